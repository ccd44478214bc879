"""Seeking's own tables' protocol against Open-Instruct's own output at the pinned commit (fixture key "seeking").

Seeking Neural Nuggets evaluates base Llama models with Open-Instruct's late-2023 scripts, without the chat format and
with shots: GSM8K 0- and 8-shot, MMLU 0- and 5-shot. tests/fixtures/make_open_instruct.py --seeking ran those
scripts (their prompts for every item, the 8-shot GSM8K prefix, which 5-shot MMLU prompts they cut to fit 2,048
Llama tokens); the seeking_* tasks must reproduce each byte for byte, and score known answers through lm-eval.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from paper_data import mmlu_rows
from stub_lm import OracleLM

from pkt.evaluation import open_instruct as oi
from pkt.evaluation.evaluate import run_task, task_config
from pkt.io import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TASKS_DIR = ROOT / "workflow" / "tasks"
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "open_instruct.json").read_text())["seeking"]
SHOTS = json.loads((TASKS_DIR / "seeking_mmlu_shots.json").read_text())
TASKS = ("seeking_gsm8k_0shot", "seeking_gsm8k_8shot", "seeking_mmlu_0shot", "seeking_mmlu_5shot")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent")


def digest(texts: list[str]) -> str:
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()


def assert_prompts(expected: dict, prompts: list[str]) -> None:
    """Every example string first (a readable diff), then all prompts by their digest."""
    for i, text in expected["examples"].items():
        assert prompts[int(i)] == text, i
    assert len(prompts) == expected["count"]
    assert digest(prompts) == expected["sha256"]


def mmlu_dev(data: Path) -> list[dict]:
    """MMLU's dev questions as cais/mmlu records, subjects in file-name order (the hub's dev split)."""
    return mmlu_rows(data, split="dev")


def write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_the_fixture_is_open_instructs_plain_format_at_the_commit_the_tasks_name():
    assert FIXTURE["provenance"]["commit"] == oi.OPEN_INSTRUCT["commit"]
    assert FIXTURE["provenance"]["chat_format"] is False
    for task in TASKS:
        cfg = task_config(TASKS_DIR, task)
        assert cfg["task"] == task and cfg["metadata"]["open_instruct"] == oi.OPEN_INSTRUCT["commit"]
    # The 5-shot cuts were counted with the tokenizer the fixture's prompts were cut with (Llama's 32,000 pieces).
    assert SHOTS["tokenizer"] == FIXTURE["provenance"]["tokenizer"] and SHOTS["tokenizer"]["vocab_size"] == 32000
    assert SHOTS["token_limit"] == oi.MMLU_TOKEN_LIMIT == FIXTURE["mmlu_5shot"]["token_limit"] == 2048


@needs_data
@pytest.mark.parametrize("shots", [0, 8])
def test_gsm8k_prompts_and_decoding_equal_open_instructs(shots):
    task = f"seeking_gsm8k_{shots}shot"
    cfg = task_config(TASKS_DIR, task)
    prompts = [cfg["doc_to_text"](doc) for doc in read_jsonl(DATA / "gsm8k" / "test.jsonl")]
    ref = FIXTURE[f"gsm8k_{shots}shot"]
    assert_prompts(ref, prompts)  # all 1,319 problems, in order: no --max_num_examples sample
    gen = cfg["generation_kwargs"]
    assert gen["until"] == ref["stops"] == ["\n"]  # no chat format: stopped at the first newline
    assert (gen["do_sample"], gen["max_gen_toks"]) == (ref["generation"]["do_sample"],
                                                       ref["generation"]["max_new_tokens"]) == (False, 512)


def test_the_8_shot_prefix_is_open_instructs_eight_exemplars_in_order():
    prefix = FIXTURE["gsm8k_8shot"]["prefix"]
    assert oi.gsm8k_prefix(8) == prefix
    assert prefix.startswith("Answer the following questions.\n\nQuestion: There are 15 trees in the grove.")
    assert prefix.endswith("23 - 15 is 8. So the answer is 8.\n\n") and prefix.count("\nAnswer: ") == 8
    assert oi.gsm8k_prefix(0) == "Answer the following question.\n\n"
    with pytest.raises(ValueError, match="0 or 8 shots"):
        oi.gsm8k_prefix(4)  # Open-Instruct would draw 4 at random: not Seeking's protocol


@needs_data
def test_mmlu_0shot_prompts_equal_open_instructs_for_all_14042_questions():
    prompts = [task_config(TASKS_DIR, "seeking_mmlu_0shot")["doc_to_text"](doc) for doc in mmlu_rows(DATA)]
    assert_prompts(FIXTURE["mmlu_0shot"], prompts)
    assert prompts[0].startswith("The following are multiple choice questions (with answers) about  abstract")
    assert "<|user|>" not in prompts[0] and prompts[0].endswith("\nD. 6\nAnswer:")


@needs_data
def test_mmlu_5shot_cuts_and_prompts_equal_open_instructs_for_all_14042_questions():
    """Open-Instruct drops exemplars, last first, until a prompt fits 2,048 tokens: the task's table names the same
    522 prompts with the same counts (2-4 kept; US and European history, law), and the prompts are its prompts."""
    rows, shots = mmlu_rows(DATA), oi.mmlu_dev_shots(mmlu_dev(DATA), 5)
    kept = [SHOTS["shots"].get(oi.mmlu_key(doc), 5) for doc in rows]
    assert {str(i): k for i, k in enumerate(kept) if k < 5} == FIXTURE["mmlu_5shot"]["cut"]
    assert len(FIXTURE["mmlu_5shot"]["cut"]) == 522 and set(FIXTURE["mmlu_5shot"]["cut"].values()) == {2, 3, 4}
    prompts = [oi.mmlu_fewshot(doc, shots[doc["subject"]], k) for doc, k in zip(rows, kept)]
    assert_prompts(FIXTURE["mmlu_5shot"], prompts)
    assert prompts[0].count("\nAnswer: ") == 5 and prompts[3285].count("\nAnswer: ") == 2
    assert oi.mmlu_fewshot(rows[7], shots[rows[7]["subject"]], 0) == oi.mmlu_user(rows[7])  # 0 shots: paper_mmlu's


def test_a_shot_count_drops_until_the_prompt_fits():
    shots = [{"subject": "law", "question": "x " * 100, "choices": ["a", "b", "c", "d"], "answer": 0}] * 5
    doc = {"subject": "law", "question": "Why?", "choices": ["a", "b", "c", "d"], "answer": 1}

    def words(text: str) -> int:
        return len(text.split())

    assert [oi.mmlu_shots_kept(doc, shots, words, 5, limit) for limit in (10_000, 460, 459, 19)] == [5, 4, 3, 0]


@needs_data
def test_gsm8k_8shot_scores_known_answers_on_real_problems(tmp_path):
    docs = read_jsonl(DATA / "gsm8k" / "test.jsonl")[:6]
    gold = [oi.gsm8k_answer(d) for d in docs]
    outputs = {d["question"]: f" She does some steps. So the answer is {g}." for d, g in zip(docs[:3], gold)}
    outputs[docs[3]["question"]] = f" So the answer is {gold[3]}.00"  # "18.00" is not "18" to Open-Instruct
    outputs[docs[4]["question"]] = f" So the answer is {int(gold[4]) + 1}."
    outputs[docs[5]["question"]] = " I do not know."
    summary, samples = run_task(OracleLM(respond=lambda d: outputs[d["question"]]), "seeking_gsm8k_8shot", TASKS_DIR,
                                data={"data_files": {"test": write(tmp_path / "gsm.jsonl", docs)}})
    assert summary["metric"] == "exact_match" and summary["items"]["score"] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert summary["value"] == pytest.approx(0.5) and summary["reference"] == oi.OPEN_INSTRUCT
    first = next(s for s in samples if s["doc"]["question"] == docs[0]["question"])
    assert first["arguments"][0][0] == FIXTURE["gsm8k_8shot"]["examples"]["0"]  # (context, generation settings)
    assert first["target"] == gold[0] == "18" and first["filtered_resps"] == ["18"]


@needs_data
def test_mmlu_5shot_scores_known_answers_and_cuts_exemplars_through_lm_eval(tmp_path):
    """Real questions, one of them cut to 2 exemplars, one to 4; the oracle answers every other one right."""
    rows = mmlu_rows(DATA)
    picked = [0, 1, 3285, 5650]
    docs = [rows[i] for i in picked]
    right = {docs[0]["question"], docs[2]["question"]}

    def gold(doc: dict) -> str:
        letter = doc["answer"] if doc["question"] in right else (doc["answer"] + 1) % 4
        return "ABCD"[letter]

    data = {"data_files": {"test": write(tmp_path / "test.jsonl", docs), "dev": write(tmp_path / "dev.jsonl",
                                                                                     mmlu_dev(DATA))}}
    summary, samples = run_task(OracleLM(gold=gold), "seeking_mmlu_5shot", TASKS_DIR, data=data)
    assert summary["metric"] == "acc" and summary["items"]["score"] == [1.0, 0.0, 1.0, 0.0]
    contexts = {s["doc"]["question"]: s["arguments"][0][0] for s in samples}  # [(context, continuation)] x 4
    for i, doc in zip(picked, docs):
        assert contexts[doc["question"]] == FIXTURE["mmlu_5shot"]["examples"][str(i)], i
    # the next token after "Answer:", as Open-Instruct scores
    assert [continuation for _, continuation in samples[0]["arguments"]] == [" A", " B", " C", " D"]


def test_mmlu_5shot_names_the_missing_dev_split(tmp_path):
    doc = {"question": "Q?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 0}
    with pytest.raises(KeyError, match="evaluation.data.seeking_mmlu_5shot.data_files.dev"):
        run_task(OracleLM(gold=lambda d: "A"), "seeking_mmlu_5shot", TASKS_DIR,
                 data={"data_files": {"test": write(tmp_path / "test.jsonl", [doc])}})


def test_seekings_gsm8k_values_are_counts_of_all_1319_problems_not_of_a_200_sample():
    """Which test set the published GSM8K percentages fit (Open-Instruct's scripts often pass --max_num_examples
    200): every vanilla value (one run) is a count of 1,319 and none a count of 200; every trained row's value is a
    mean of three runs over 1,319 (k / 3,957) and none of three over 200, and 14 of its 18 values are not one run's
    count.
    The MMLU columns agree: vanilla values are Open-Instruct's printed 3-decimal accuracies, trained ones means of
    three of them (x 30 an integer, up to rounding)."""
    from pkt.report.published_seeking import PUBLISHED, TRANSFER

    rows = [(name, row.scores) for pair in PUBLISHED.values() for name, row in pair.items()]
    rows += [(f"transfer:{task}", row.scores) for task, row in TRANSFER.items()]
    gsm = [(name, s[col]) for name, s in rows for col in ("GSM8K 0-shot", "GSM8K 8-shot")]
    mmlu = [(name, s[col]) for name, s in rows for col in ("MMLU 0-shot", "MMLU 5-shot")]
    vanilla = {v for name, v in gsm if name in ("student", "teacher")}
    trained = {v for name, v in gsm if name not in ("student", "teacher")}
    assert vanilla == {4.70, 10.77, 4.93, 17.44, 3.34, 15.54, 6.52, 27.82}
    assert all(oi.reachable(v, 1319) and not oi.reachable(v, 200) for v in vanilla)
    assert all(oi.reachable(v, 1319, samples=3) and not oi.reachable(v, 200, samples=3) for v in trained)
    assert not any(oi.reachable(v, 200) for v in trained)
    assert len(trained) == 18 and len({v for v in trained if not oi.reachable(v, 1319)}) == 14
    for name, v in mmlu:
        if name in ("student", "teacher"):
            assert round(v * 10, 6) == round(v * 10), (name, v)  # 41.70: "Average accuracy: 0.417"
        else:
            assert abs(v * 30 - round(v * 30)) <= 0.15 + 1e-9, (name, v)
