"""The run's shared verdict store (pkt.evaluation.verdicts): a program judged by one evaluate job is not run again."""

from __future__ import annotations

import json

import pytest

from pkt.evaluation import tasks
from pkt.evaluation.sandbox.run import SandboxResult
from pkt.evaluation.verdicts import VerdictStore, storable


def verdict(status: str, reason: str = "x") -> str:
    return json.dumps(SandboxResult(status, reason, 0.01).to_dict(), sort_keys=True)


def test_only_the_programs_own_reproducible_verdicts_are_stored(tmp_path):
    store = VerdictStore(tmp_path)
    store.put("ab" * 32, verdict("pass"))
    store.put("cd" * 32, verdict("timeout", "wall-clock timeout 10s"))
    store.put("ef" * 32, verdict("error", "sandbox runner failed with exit status 70"))
    store.put("01" * 32, verdict("fail", "AssertionError at line 3"))
    assert json.loads(store.get("ab" * 32))["status"] == "pass" and store.get("01" * 32) is not None
    assert store.get("cd" * 32) is None and store.get("ef" * 32) is None
    assert storable(verdict("error", "SyntaxError at line 1: invalid syntax"))
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.fixture
def counted(monkeypatch):
    """run_programs replaced by a stub that records what it was asked to run."""
    calls: list[list[str]] = []

    def fake(programs, workers=1):
        calls.append(list(programs))
        return [SandboxResult("pass" if "ok" in p else "fail", "stub", 0.0) for p in programs]

    import pkt.evaluation.sandbox.run

    monkeypatch.setattr(pkt.evaluation.sandbox.run, "run_programs", fake)
    monkeypatch.setattr(tasks, "_VERDICTS", {})
    yield calls
    tasks.set_verdict_store(None)


def test_a_second_job_reuses_the_first_jobs_verdicts(tmp_path, counted, monkeypatch):
    tasks.set_verdict_store(tmp_path)
    first = tasks.run_code(["ok = 1", "boom", "ok = 1"])
    assert counted == [["ok = 1", "boom"]]  # one run per distinct program within a job
    monkeypatch.setattr(tasks, "_VERDICTS", {})  # a new evaluate job: a fresh process
    second = tasks.run_code(["boom", "ok = 2", "ok = 1"])
    assert counted[1] == ["ok = 2"] and second[0] == first[1] and second[2] == first[0]
    tasks.set_verdict_store(None)  # without a store every job judges its programs itself
    monkeypatch.setattr(tasks, "_VERDICTS", {})
    tasks.run_code(["boom"])
    assert counted[2] == ["boom"]


def test_a_changed_sandbox_never_reuses_old_verdicts(tmp_path, monkeypatch):
    import pkt.evaluation.verdicts

    VerdictStore(tmp_path).put("ab" * 32, verdict("pass"))
    monkeypatch.setattr(pkt.evaluation.verdicts, "sandbox_version", lambda: "another")
    assert VerdictStore(tmp_path).get("ab" * 32) is None
