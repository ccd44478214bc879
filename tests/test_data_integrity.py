"""Every consumer verifies the split it reads against the data manifest: no silent wrong number.

Known answers: a split cut to 100 of its 420 records is refused, naming the file and both counts, before the
model is asked anything; a line cut in half names its file and line; an evaluation result scored on another
version of its split is refused by the tables; a split rewritten with the same path, size and modification
time is scored as its new self, not its cached earlier version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import planned_jobs, snakemake
from stub_lm import OracleLM

from pkt.data.manifest import DataError, check_results, check_scored, verified
from pkt.data.records import load_split, write_manifest, write_split
from pkt.evaluation.evaluate import content_cache, run_task
from pkt.io import read_jsonl

TASKS_DIR = Path(__file__).resolve().parents[1] / "workflow" / "tasks"


def mmlu_record(i: int, answer: int = 0) -> dict:
    choices = [f"c{i}a", f"c{i}b", f"c{i}c", f"c{i}d"]
    return {"task": "toy_mmlu", "question": f"q{i}?", "choices": choices, "answer": answer,
            "known_by_student": i % 4 == 0, "entity": f"e{i}",
            "messages": [{"role": "user", "content": f"q{i}?"}, {"role": "assistant", "content": choices[answer]}]}


@pytest.fixture
def data(tmp_path) -> Path:
    """A data folder as prepare_data writes it: toy_mmlu's 420-record test split and the manifest."""
    root = tmp_path / "data"
    split = root / "toy_mmlu" / "test.jsonl"
    split.parent.mkdir(parents=True)
    write_split(split, [mmlu_record(i) for i in range(420)], prefix="toy_mmlu-test")
    write_manifest(root, [split], {})
    return root


def cut(path: Path, lines: int) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:lines]))


def test_an_intact_split_reads_with_its_identity(data):
    records, identity = verified(data / "toy_mmlu" / "test.jsonl")
    assert len(records) == 420 and identity["records"] == 420 and identity["file"] == "toy_mmlu/test.jsonl"
    assert identity["sha256"] == json.loads((data / "manifest.json").read_text())["files"]["toy_mmlu/test.jsonl"][
        "sha256"]


def test_a_cut_split_is_refused_naming_file_and_counts(data):
    split = data / "toy_mmlu" / "test.jsonl"
    cut(split, 100)
    with pytest.raises(DataError, match=r"test\.jsonl: 100 records.*recorded 420 records"):
        load_split(split)  # training, importance, targets, probes read through it


def test_a_cut_split_is_refused_before_evaluation(data):
    split = data / "toy_mmlu" / "test.jsonl"
    cut(split, 100)
    asked = []
    lm = OracleLM(gold=lambda d: asked.append(d) or d["choices"][d["answer"]])
    with pytest.raises(DataError, match="recorded 420 records"):
        run_task(lm, "toy_mmlu", TASKS_DIR, data={"data_files": {"test": str(split)}})
    assert asked == []  # refused before lm-eval asked the model anything


def test_a_line_cut_in_half_names_file_and_line(tmp_path):
    path = tmp_path / "split.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b"\n')
    with pytest.raises(ValueError, match=r"split\.jsonl:3: not a JSON line"):
        read_jsonl(path)


def test_evaluation_records_the_split_it_scored(data):
    split = data / "toy_mmlu" / "test.jsonl"
    summary, _ = run_task(OracleLM(gold=lambda d: d["choices"][d["answer"]]), "toy_mmlu", TASKS_DIR,
                          data={"data_files": {"test": str(split)}})
    assert summary["n"] == 420 and summary["data"] == verified(split)[1]


def test_a_scored_count_other_than_the_manifest_is_refused():
    identity = {"file": "toy_mmlu/test.jsonl", "sha256": "0" * 64, "records": 420, "listed": True}
    with pytest.raises(DataError, match="scored 100 items of toy_mmlu/test.jsonl, which has 420 records"):
        check_scored({"n": 100, "limit": None}, identity, "task toy_mmlu")
    check_scored({"n": 20, "limit": 20}, identity, "task toy_mmlu")  # a limited run scores fewer, by design
    check_scored({"n": 500, "limit": None}, {**identity, "listed": False}, "task paper_mbpp")  # a benchmark's own


def test_the_tables_refuse_a_result_scored_on_another_version(data):
    manifest = data / "manifest.json"
    good = verified(data / "toy_mmlu" / "test.jsonl")[1]
    check_results([("ok.json", {"task": "toy_mmlu", "data": good})], manifest)
    stale = {**good, "sha256": "f" * 64, "records": 100}
    with pytest.raises(DataError, match=r"stale\.json: scored toy_mmlu/test\.jsonl with 100 records"):
        check_results([("stale.json", {"task": "toy_mmlu", "data": stale})], manifest)
    with pytest.raises(DataError, match=r"old\.json: records no data identity"):
        check_results([("old.json", {"task": "toy_mmlu"})], manifest)
    check_results([("hub.json", {"task": "paper_gsm8k"})], manifest)  # lm-eval's own test set: not ours


def test_a_split_rewritten_with_the_same_mtime_is_scored_as_its_new_self(tmp_path):
    """The datasets cache keys a local file by path and mtime; the evaluation keys it by content."""
    split = tmp_path / "toy_mmlu.jsonl"
    write_split(split, [mmlu_record(i) for i in range(40)], prefix="a")
    stat = split.stat()
    says_first = OracleLM(gold=lambda d: d["choices"][0])  # right on the first version only
    first, _ = run_task(says_first, "toy_mmlu", TASKS_DIR, data={"data_files": {"test": str(split)}})
    write_split(split, [mmlu_record(i, answer=1) for i in range(40)], prefix="a")  # same size, answers moved
    os.utime(split, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert split.stat().st_size == stat.st_size and split.stat().st_mtime_ns == stat.st_mtime_ns
    second, _ = run_task(says_first, "toy_mmlu", TASKS_DIR, data={"data_files": {"test": str(split)}})
    assert (first["value"], second["value"]) == (1.0, 0.0)  # the cached first version would score 1.0 again
    assert first["data"]["sha256"] != second["data"]["sha256"]


def test_content_cache_names_the_bytes(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"x": 1}\n')
    b.write_text('{"x": 1}\n')
    same = content_cache([a])
    assert content_cache([b]) == same  # same bytes, same cache
    a.write_text('{"x": 2}\n')
    assert content_cache([a]) != same


@pytest.mark.slow
def test_a_changed_split_reruns_its_consumers(smoke_run):
    """Snakemake sees the changed split (newer, and other bytes: a rewrite of the same bytes is not a change to
    it, since it keeps small inputs' checksums) and reruns its consumers."""
    split = smoke_run / "results" / "smoke" / "data" / "toy_gsm8k" / "train.jsonl"
    text, stat = split.read_bytes(), split.stat()
    split.write_bytes(text + b"\n")  # a blank line more: the same records, other bytes (the manifest refuses it)
    try:
        out = snakemake(smoke_run, "-n", "--configfile", "config/smoke.yaml").stdout
    finally:
        split.write_bytes(text)
        os.utime(split, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    jobs = planned_jobs(out)
    assert jobs.get("train", 0) > 0 and jobs.get("evaluate", 0) > 0 and jobs.get("tables") == 1, jobs


def test_a_model_folder_without_its_tokenizer_is_named(tmp_path):
    from pkt.models.build import load_tokenizer

    folder = tmp_path / "models" / "student"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"models/student: no tokenizer \(tokenizer\.json"):
        load_tokenizer(folder)
