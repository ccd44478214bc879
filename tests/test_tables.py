"""Tables and figures from eval JSONs whose numbers are known."""

from __future__ import annotations

import json

import pytest

from pkt.figures import benchmark_bars, training_curves
from pkt.tables import benchmark_of, load_results, main_table, write_tables

PAIRS = {"toy": {"teacher": "big", "student": "small"}}
SCORES = {  # (method, pair slot, seed) -> score per benchmark, as fractions
    ("vanilla", "small", 0): {"mmlu": 0.40, "gsm8k": 0.20, "humaneval": 0.10, "mbpp": 0.10},
    ("vanilla", "big", 0): {"mmlu": 0.80, "gsm8k": 0.40, "humaneval": 0.30, "mbpp": 0.30},
    ("lora", "toy", 0): {"mmlu": 0.50, "gsm8k": 0.30, "humaneval": 0.10, "mbpp": 0.20},
    ("lora", "toy", 1): {"mmlu": 0.60, "gsm8k": 0.30, "humaneval": 0.20, "mbpp": 0.20},
}


@pytest.fixture
def eval_files(tmp_path):
    paths = []
    for (method, pair, seed), scores in SCORES.items():
        for bench, value in scores.items():
            p = tmp_path / method / pair / f"toy_{bench}" / f"seed{seed}.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps({"method": method, "pair": pair, "task": f"toy_{bench}", "seed": seed,
                                     "value": value, "n": 10}))
            paths.append(p)
    return paths


def test_benchmark_names():
    assert benchmark_of("toy_gsm8k") == benchmark_of("paper_gsm8k") == "GSM8K"
    with pytest.raises(ValueError, match="toy_trivia"):
        benchmark_of("toy_trivia")


def test_main_table_rows_means_stds_average_and_gap(eval_files):
    table = main_table(load_results(eval_files, PAIRS))
    assert [row for _, row in table.index] == ["student", "teacher", "lora"]
    mean, std = table["mean"], table["std"]
    assert mean.loc[("toy", "teacher"), "MMLU"] == pytest.approx(80.0)
    assert mean.loc[("toy", "lora"), "MMLU"] == pytest.approx(55.0)
    assert std.loc[("toy", "lora"), "MMLU"] == pytest.approx(7.0710678)  # sample std of 50 and 60
    assert mean.loc[("toy", "student"), "Average"] == pytest.approx(20.0)
    assert mean.loc[("toy", "lora"), "Average"] == pytest.approx(30.0)  # seeds average 27.5 and 32.5
    assert mean.loc[("toy", "teacher"), "Gap to teacher"] == 0.0
    # |80-55| + |40-30| + |30-15| + |30-20| = 60 -> mean 15
    assert mean.loc[("toy", "lora"), "Gap to teacher"] == pytest.approx(15.0)
    assert table.loc[("toy", "lora"), ("seeds", "")] == 2


def test_methods_that_did_not_run_are_absent(eval_files):
    only_vanilla = [p for p in eval_files if "lora" not in p.parts]
    table = main_table(load_results(only_vanilla, PAIRS))
    assert [row for _, row in table.index] == ["student", "teacher"]


def test_written_tables_and_metrics(eval_files, tmp_path):
    table = main_table(load_results(eval_files, PAIRS))
    out = tmp_path / "out"
    write_tables(table, out / "main.csv", out / "main.md", out / "main.tex", out / "metrics.json", "toy scale")
    md = (out / "main.md").read_text()
    assert "| LoRA" in md and "55.00 ± 7.07" in md and md.startswith("toy scale")
    assert "\\begin{tabular}" in (out / "main.tex").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["toy/lora/MMLU"] == 55.0 and metrics["toy/teacher/Gap to teacher"] == 0.0
    assert "Model" in (out / "main.csv").read_text().splitlines()[0]


def test_figures_are_written(eval_files, tmp_path):
    table = main_table(load_results(eval_files, PAIRS))
    assert benchmark_bars(table, tmp_path / "bars.png", "t").stat().st_size > 1000
    curves = [{"method": "lora", "task": "toy_mmlu", "seed": 0, "loss_curve": [[5, 2.0], [10, 1.0]]}]
    assert training_curves(curves, tmp_path / "curves.png", "t").stat().st_size > 1000
