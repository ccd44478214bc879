"""Functions the task YAMLs name with ``!function utils.<name>``; the logic is in ``pkt.evaluation``."""

import json
from functools import cached_property
from pathlib import Path

from lm_eval.api.task import ConfigurableTask

from pkt.evaluation import open_instruct as oi
from pkt.evaluation.open_instruct import gsm8k_answer, gsm8k_predictions  # noqa: F401 - for lm-eval's YAML loader
from pkt.evaluation.superni import superni_prompt, superni_results, superni_target  # noqa: F401 - seeking_superni
from pkt.evaluation.tasks import (  # noqa: F401 - re-exported for lm-eval's YAML loader
    extract_numbers,
    humaneval_filter,
    mbpp_filter,
    mbpp_target,
    mbpp_test_split,
    number_match,
    paper_humaneval_filter,
    pass_at_1,
    toy_gsm8k_target,
    toy_prompt,
    tulu_prompt,
)

# The papers' prompts in the Tulu format (pkt.evaluation.tasks.PAPER_TURNS); evaluation.protocol: chat_template
# swaps them.
mmlu_prompt = tulu_prompt("paper_mmlu")
gsm8k_prompt = tulu_prompt("paper_gsm8k")
humaneval_prompt = tulu_prompt("paper_humaneval")
mbpp_prompt = tulu_prompt("paper_mbpp")


# Seeking's own tables (pkt.evaluation.open_instruct, "Seeking"): Open-Instruct's plain format, with shots.
gsm8k_0shot_plain, gsm8k_8shot_plain = oi.gsm8k_0shot_plain, oi.gsm8k_8shot_plain
mmlu_plain = oi.mmlu_user  # 0-shot MMLU without chat turns: the question is the whole prompt
# The exemplars Open-Instruct keeps of a 5-shot MMLU prompt under Llama-1/2's tokenizer (the models of Seeking's
# tables) where fewer than 5 fit its 2,048 tokens: written by tests/fixtures/make_open_instruct.py --seeking.
MMLU_SHOTS = Path(__file__).with_name("seeking_mmlu_shots.json")


class MMLUFewShot(ConfigurableTask):
    """Open-Instruct's k-shot MMLU (``--ntrain k``, metadata ``shots``): each question after the first k questions
    of its subject's dev split (``fewshot_split``), fewer where :data:`MMLU_SHOTS` says Open-Instruct's token limit
    cut them. The task renders the exemplars itself: lm-eval's few-shot sampler would draw them across subjects,
    and run_task asks lm-eval for none."""

    def __init__(self, config: dict | None = None, **kwargs) -> None:
        # lm-eval builds a YAML's ``class`` with the whole YAML, that key included, which TaskConfig does not take.
        super().__init__(config={k: v for k, v in (config or {}).items() if k != "class"}, **kwargs)

    def fewshot_docs(self):
        """The dev split (lm-eval reads it as it builds the task), named in the error where the data has none."""
        split = self.config.fewshot_split
        if split not in self.dataset:
            raise KeyError(f"task {self.config.task}: no {split!r} split to draw its exemplars from (local files: "
                           f"evaluation.data.{self.config.task}.data_files.{split})")
        return self.dataset[split]

    @cached_property
    def _shots(self) -> dict[str, list[dict]]:
        return oi.mmlu_dev_shots(self.fewshot_docs(), self.config.metadata["shots"])

    @cached_property
    def _kept(self) -> dict[str, int]:
        table, asked = json.loads(MMLU_SHOTS.read_text()), self.config.metadata["shots"]
        if table["shots_asked"] != asked:
            raise ValueError(f"task {self.config.task}: {MMLU_SHOTS.name} holds the cuts of "
                             f"{table['shots_asked']}-shot prompts, not {asked}-shot ones")
        return table["shots"]

    def doc_to_text(self, doc, doc_to_text=None) -> str:
        shots = self._shots.get(doc["subject"])
        if shots is None:
            raise KeyError(f"task {self.config.task}: the dev split has no question of subject {doc['subject']!r}")
        return oi.mmlu_fewshot(doc, shots, self._kept.get(oi.mmlu_key(doc), self.config.metadata["shots"]))
