"""Atomic outputs: a failure inside the block leaves neither the target nor a temporary file."""

from __future__ import annotations

import pytest

from pkt.io import atomic_dir, atomic_path, read_json, read_jsonl, sha256_dir, write_json, write_jsonl


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_failed_dir_keeps_the_old_one(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "weights").write_text("new, half written")
        raise RuntimeError("killed")
    assert (target / "weights").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_json_round_trip_and_dir_hash(tmp_path):
    write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    assert read_json(tmp_path / "a" / "x.json") == {"a": [1, 2], "b": 1}
    h = sha256_dir(tmp_path / "a")
    (tmp_path / "a" / "x.json").touch()
    assert sha256_dir(tmp_path / "a") == h


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        read_json(tmp_path / "nothing.json")


def test_a_jsonl_record_holding_line_separators_reads_back_whole(tmp_path):
    """JSON strings may hold U+0085 and U+2028 raw (the LaTen MMLU align split does): a record per "\\n" line."""
    records = [{"text": "fat\x85mass"}, {"text": "a\u2028b\u2029c\x0bd\x1ce"}, {"text": "plain"}]
    write_jsonl(tmp_path / "r.jsonl", records)
    assert read_jsonl(tmp_path / "r.jsonl") == records
