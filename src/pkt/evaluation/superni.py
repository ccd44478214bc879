"""Super-NaturalInstructions as Seeking Neural Nuggets evaluates it: Open-Instruct's ``eval/superni``.

Seeking reports Super-NI's test tasks with Exact Match and ROUGE-L (its website's Table 1) through
Open-Instruct's ``eval/superni/run_eval.py``. That folder left Open-Instruct in 2c54b5e (3 Sep 2023, "Remove
mgsm and superni"), so it is not in the commit :data:`pkt.evaluation.open_instruct.OPEN_INSTRUCT` pins; this module
reproduces its last version (:data:`OPEN_INSTRUCT_SUPERNI`), and ``tests/test_superni.py`` compares it with what
that code selects, renders and scores (``tests/fixtures/open_instruct.json``, key ``superni``). In brief:

* Selection (``ni_dataset.py`` ``_generate_examples``, with ``run_eval.py``'s defaults): the tasks of
  ``splits/default/test_tasks.txt`` in file order; of each, the first 100 instances (the label-balanced ones
  Super-NI puts first), shuffled by the process-wide ``random`` seeded 42, then the first 10. The datasets
  builder generates the train split (every instance of each train task shuffled, then 1 kept) and the dev split
  before the test split, all from that one generator, so the test shuffles depend on every train task's
  instance count: :func:`select_instances` replays those shuffles. (The public ``splits/default`` has no
  ``dev_tasks.txt``, on which Open-Instruct's loader stops; one that is there is replayed too.)
* Prompt (``ni_collator.py`` with the task definition, 0 positive and 0 negative examples, no task name, no chat
  format): ``definition.strip()`` (+ "." unless it ends in punctuation), a blank line, ``"Input: " +
  input.strip()`` (+ "." likewise), a blank line, ``"Output:"``; an empty definition leaves the bare input.
  A source longer than 1,024 tokens is cut to its first 1,024 and decoded (:func:`truncate_source`: needs the
  tokenizer, so the converter does it when given one and stores the row's ``prompt``).
* Scoring (``compute_metrics.py``, the default track): exact match after lower-casing, removing ASCII
  punctuation and collapsing whitespace (SQuAD's normalisation without removing articles), and rouge_score's
  ROUGE-L F-measure with the Porter stemmer and its default tokenizer (ASCII letters and digits only: a
  non-Latin answer scores 0 however exact), each the maximum over the instance's references.

The data file (:func:`convert`) has one JSON object per line: ``id`` (the instance's), ``task`` (the task file's
name), ``category`` (its first category), ``definition`` (its first definition), ``input``, ``outputs`` (every
reference) and, when truncated for a tokenizer, ``prompt``. Usage::

    python -m pkt.evaluation.superni <natural-instructions dir> <out.jsonl> [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import string
from pathlib import Path
from typing import Any

from pkt.io import write_jsonl

OPEN_INSTRUCT_SUPERNI = {
    "repo": "allenai/open-instruct",
    "commit": "a155e6cde44462eab114d5c6576045770179e481",  # the last commit with eval/superni
    "date": "2023-09-03",
    "removed_in": "2c54b5e299db696d87f817c7c672f44e03ed6229",
}
SEED = 42  # run_eval.py: random.seed(42) before load_dataset
PER_EVAL_TASK = 10  # run_eval.py --max_num_instances_per_eval_task
PER_TRAIN_TASK = 1  # run_eval.py --max_num_instances_per_task (train split: only its shuffles matter here)
TEST_POOL = 100  # ni_dataset.py: a test task's first 100 instances
MAX_SOURCE_LENGTH = 1024  # run_eval.py --max_source_length
ENGLISH_TEST_TASKS = 119  # splits/default/test_tasks.txt of the Super-NI paper (splits/README.md): 1,190 instances
FIELDS = ("id", "task", "category", "definition", "input", "outputs")

# ------------------------------------------------------------------------------------------- selection


def task_list(path: Path) -> list[str]:
    """The task names of a split file, in its order (a blank line, on which Open-Instruct would fail, skipped)."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_task(task_dir: Path, name: str) -> dict[str, Any]:
    path = task_dir / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"Super-NI task {name}: {path} does not exist")
    return json.loads(path.read_text(encoding="utf-8"))


def _capped(rng: random.Random, items: list, cap: int | None) -> list:
    """``random.shuffle`` then the first ``cap``, as ``_generate_examples`` does when the cap is not None and >= 0
    (a shuffle's draws depend only on the list's length, so replaying one needs only the count)."""
    if cap is None or cap < 0:
        return items
    rng.shuffle(items)
    return items[:cap]


def select_instances(ni_dir: str | Path, per_task: int | None = PER_EVAL_TASK,
                     per_train_task: int | None = PER_TRAIN_TASK,
                     seed: int = SEED) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(records, provenance): the test instances Open-Instruct's run_eval scores, in its order.

    ``ni_dir`` is a natural-instructions checkout (``tasks/*.json``, ``splits/default/*.txt``). The shuffles of the
    train split (and of a ``dev_tasks.txt`` if present) are replayed first with one generator seeded ``seed``.
    """
    root = Path(ni_dir)
    splits, task_dir = root / "splits" / "default", root / "tasks"
    rng = random.Random(seed)
    replayed = {}
    for split, cap in (("train", per_train_task), ("dev", per_task)):
        path = splits / f"{split}_tasks.txt"
        if split == "train" or path.is_file():
            names = task_list(path)
            for name in names:
                _capped(rng, list(range(len(load_task(task_dir, name)["Instances"]))), cap)
            replayed[split] = len(names)
    records = []
    tests = task_list(splits / "test_tasks.txt")
    for name in tests:
        task = load_task(task_dir, name)
        for instance in _capped(rng, task["Instances"][:TEST_POOL], per_task):
            records.append(record(name, task, instance))
    provenance = {"open_instruct": OPEN_INSTRUCT_SUPERNI, "seed": seed, "per_task": per_task,
                  "per_train_task": per_train_task, "replayed_tasks": replayed, "test_tasks": len(tests),
                  "records": len(records)}
    return records, provenance


def record(name: str, task: dict[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    """One row of the data file from a task file and one of its instances."""
    definition = task["Definition"]
    outputs = instance["output"]
    if not isinstance(outputs, list) or not outputs:
        raise ValueError(f"Super-NI task {name}, instance {instance.get('id')}: 'output' must be a non-empty list")
    return {"id": instance["id"], "task": name, "category": (task.get("Categories") or [""])[0],
            "definition": definition[0] if isinstance(definition, list) else definition,
            "input": instance["input"], "outputs": list(outputs)}


# ----------------------------------------------------------------------------------------------- prompt


def _closed(text: str) -> str:
    """``text`` with a full stop added unless its last character is ASCII punctuation (the collator's rule)."""
    return text if text and text[-1] in string.punctuation else text + "."


def superni_source(doc: dict[str, Any]) -> str:
    """The collator's source for an instance with the task definition and no examples (``ni_collator.py``)."""
    if doc["definition"] == "":
        return doc["input"]
    definition = doc["definition"].strip()
    if not definition:
        raise ValueError(f"Super-NI instance {doc.get('id')}: a definition of whitespace only")
    return _closed(definition) + "\n\n" + _closed(f"Input: {doc['input'].strip()}") + "\n\nOutput:"


def truncate_source(source: str, tokenizer: Any, max_source_length: int = MAX_SOURCE_LENGTH) -> str:
    """The source as run_eval feeds it: over ``max_source_length`` tokens (special tokens included), its first
    ``max_source_length`` tokens decoded without special tokens; else unchanged."""
    ids = tokenizer(source)["input_ids"]
    if len(ids) <= max_source_length:
        return source
    return tokenizer.decode(ids[:max_source_length], skip_special_tokens=True)


def superni_prompt(doc: dict[str, Any]) -> str:
    """lm-eval doc_to_text: the row's stored (truncated) ``prompt``, else :func:`superni_source`."""
    return doc.get("prompt") or superni_source(doc)


def superni_target(doc: dict[str, Any]) -> str:
    """lm-eval doc_to_target, for the samples file only: the first reference (scoring takes all of them)."""
    return doc["outputs"][0]


# ---------------------------------------------------------------------------------------------- metrics


def normalize_answer(text: str) -> str:
    """compute_metrics' ``normalize_answer``: lower-case, drop ASCII punctuation, collapse whitespace."""
    lowered = text.lower()
    return " ".join("".join(ch for ch in lowered if ch not in string.punctuation).split())


def exact_match(prediction: str, references: list[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference."""
    return float(max(normalize_answer(prediction) == normalize_answer(ref) for ref in references))


@functools.cache
def _rouge_l_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, references: list[str]) -> float:
    """The best ROUGE-L F-measure of the prediction against any reference (rouge_score, Porter stemmer)."""
    scorer = _rouge_l_scorer()
    return max(scorer.score(target=ref, prediction=prediction)["rougeL"].fmeasure for ref in references)


def superni_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """lm-eval process_results: the generation's exact match and ROUGE-L against the row's references."""
    prediction = results[0]
    return {"exact_match": exact_match(prediction, doc["outputs"]), "rougeL": rouge_l(prediction, doc["outputs"])}


def data_errors(evaluation: dict[str, Any], task: str = "seeking_superni") -> list[str]:
    """Config check: an evaluated Super-NI task needs its local file (no hub copy), one line naming the key."""
    if task not in evaluation.get("tasks", []):
        return []
    files = ((evaluation.get("data") or {}).get(task) or {}).get("data_files") or {}
    if "test" in files:
        return []
    return [f"evaluation.data.{task}.data_files.test: {task} reads a local JSONL (Super-NI has no hub copy); write "
            "it with `python -m pkt.evaluation.superni <natural-instructions dir> <out.jsonl>` and name it here"]


# ----------------------------------------------------------------------------------------------- convert


def convert(ni_dir: str | Path, out: str | Path, tokenizer: Any = None, max_source_length: int = MAX_SOURCE_LENGTH,
            per_task: int | None = PER_EVAL_TASK) -> dict[str, Any]:
    """Write the data file for ``ni_dir``; with ``tokenizer`` each row also gets its truncated ``prompt`` (only
    where truncation changes it). Returns the provenance, with the count of truncated prompts."""
    records, provenance = select_instances(ni_dir, per_task=per_task)
    truncated = 0
    if tokenizer is not None:
        for row in records:
            source = superni_source(row)
            prompt = truncate_source(source, tokenizer, max_source_length)
            if prompt != source:
                row["prompt"], truncated = prompt, truncated + 1
    write_jsonl(out, records)
    return {**provenance, "truncated": truncated if tokenizer is not None else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pkt.evaluation.superni", description=__doc__.split("\n\n")[0])
    parser.add_argument("ni_dir", help="natural-instructions checkout (tasks/, splits/default/)")
    parser.add_argument("out", help="JSONL to write (evaluation.data.seeking_superni.data_files.test)")
    parser.add_argument("--per-task", type=int, default=PER_EVAL_TASK, help="instances per test task (10)")
    parser.add_argument("--tokenizer", help="the evaluated model's tokenizer: store prompts cut as run_eval cuts")
    parser.add_argument("--max-source-length", type=int, default=MAX_SOURCE_LENGTH)
    args = parser.parse_args(argv)
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    info = convert(args.ni_dir, args.out, tokenizer, args.max_source_length, args.per_task)
    print(f"wrote {args.out}: {info['records']} instances of {info['test_tasks']} test tasks (shuffles replayed: "
          f"{info['replayed_tasks']}; truncated prompts: {info['truncated']})")
    if info["test_tasks"] != ENGLISH_TEST_TASKS:
        print(f"note: the Super-NI paper's English track has {ENGLISH_TEST_TASKS} test tasks, this checkout's "
              f"splits/default/test_tasks.txt {info['test_tasks']}: check its commit")


if __name__ == "__main__":
    main()
