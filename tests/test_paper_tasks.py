"""The paper tasks' metric code on the real benchmark files (skipped when ../shared/data is absent).

A model that answers with the gold answer must score 100%: these show the metric path (prompting,
answer extraction, sandboxed execution) is right, not a model.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from stub_lm import OracleLM

from pkt.evaluation.evaluate import run_task

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TASKS_DIR = Path(__file__).resolve().parents[1] / "workflow" / "tasks"
pytestmark = [pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent"), pytest.mark.slow]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def evaluate(task: str, path: Path, lm) -> tuple[dict, list]:
    return run_task(lm, task, TASKS_DIR, data={"data_files": {"test": str(path)}})


def test_humaneval_canonical_solutions_all_pass(tmp_path):
    with gzip.open(DATA / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    summary, samples = evaluate("paper_humaneval", write_jsonl(tmp_path / "he.jsonl", rows),
                                OracleLM(respond=lambda d: d["canonical_solution"]))
    failures = [json.loads(s["filtered_resps"][0][0]) for s in samples if s["pass_at_1"] != 1.0]
    assert summary["n"] == 164 and summary["value"] == 1.0, failures[:3]
    assert summary["samples_per_item"] == 20 and all(len(s["filtered_resps"][0]) == 20 for s in samples)


def test_humaneval_empty_completion_fails(tmp_path):
    with gzip.open(DATA / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f][:10]
    summary, _ = evaluate("paper_humaneval", write_jsonl(tmp_path / "he.jsonl", rows), OracleLM(respond=lambda d: ""))
    assert summary["value"] == 0.0


def test_mbpp_test_split_reference_solutions_all_pass(tmp_path):
    summary, samples = evaluate("paper_mbpp", DATA / "mbpp" / "mbpp.jsonl",
                                OracleLM(respond=lambda d: f"```python\n{d['code']}\n```"))
    ids = sorted(s["doc"]["task_id"] for s in samples)
    failures = [json.loads(s["filtered_resps"][0]) for s in samples if s["pass_at_1"] != 1.0]
    assert ids == list(range(11, 511))
    assert summary["value"] == 1.0, failures[:3]


def test_gsm8k_gold_answers_score_full_exact_match():
    summary, _ = evaluate("paper_gsm8k", DATA / "gsm8k" / "test.jsonl", OracleLM(respond=lambda d: d["answer"]))
    assert summary["n"] == 1319 and summary["value"] == 1.0


def test_mmlu_gold_letter_scores_full_accuracy(tmp_path):
    rows = []
    for path in sorted((DATA / "mmlu" / "test").glob("*_test.csv")):
        subject = path.name.removesuffix("_test.csv")
        with open(path, newline="", encoding="utf-8") as f:
            for q, a, b, c, d, ans in csv.reader(f):
                rows.append({"question": q, "subject": subject, "choices": [a, b, c, d], "answer": "ABCD".index(ans)})
    data = write_jsonl(tmp_path / "mmlu.jsonl", rows)
    summary, _ = evaluate("paper_mmlu", data, OracleLM(gold=lambda d: "ABCD"[d["answer"]]))
    assert summary["n"] == 14042 and summary["value"] == 1.0
    summary, _ = evaluate("paper_mmlu", data, OracleLM(gold=lambda d: "ABCD"[(d["answer"] + 1) % 4]))
    assert summary["value"] == 0.0
