"""Where the time goes: benchmark files summed per rule, with known numbers."""

from __future__ import annotations

import os

import pytest

from pkt.report.timing import load_benchmarks, per_rule, report, span_s

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(path, seconds: float, end: float, rss: float = 100.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t50\t{seconds / 2}\n")
    os.utime(path, (end, end))


@pytest.fixture
def logs(tmp_path):
    bench(tmp_path / "prepare_model" / "teacher.benchmark.tsv", 200.0, end=1200.0, rss=900)
    bench(tmp_path / "prepare_model" / "student.benchmark.tsv", 80.0, end=1080.0)
    bench(tmp_path / "evaluate" / "lora" / "toy" / "seed0.benchmark.tsv", 30.0, end=1300.0)
    bench(tmp_path / "tables.benchmark.tsv", 2.0, end=1310.0)
    return tmp_path


def test_rules_are_summed_and_sorted(logs):
    table = per_rule(load_benchmarks(logs))
    assert list(table.index) == ["prepare_model", "evaluate", "tables"]
    assert table.loc["prepare_model", "jobs"] == 2
    assert table.loc["prepare_model", "wall_s"] == 280.0 and table.loc["prepare_model", "longest_s"] == 200.0
    assert table.loc["prepare_model", "cpu_s"] == 140.0 and table.loc["prepare_model", "max_rss_mb"] == 900
    assert table.loc["evaluate", "jobs"] == 1


def test_span_runs_from_first_start_to_last_end(logs):
    assert span_s(load_benchmarks(logs)) == pytest.approx(1310.0 - 1000.0)
    assert "312 s of job time; first start to last end: 310 s" in report(logs)


def test_no_benchmarks_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no \\*.benchmark.tsv"):
        load_benchmarks(tmp_path)
