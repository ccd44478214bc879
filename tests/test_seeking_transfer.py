"""Seeking's task-transfer rows and table: a seeking_from_<task> row trains every task from <task>'s factors, and
its evaluations fill Seeking's columns (Super-NI twice: EM and ROUGE-L), beside the published values."""

from __future__ import annotations

import json

import pytest
from conftest import copy_workflow, planned_jobs, snakemake

from pkt.methods import base_method
from pkt.methods.seeking.transfer import transfer_table, with_published, write_transfer
from pkt.report.published_seeking import TRANSFER
from pkt.rows import FIXED, method_spec, transfer_source


def test_a_transfer_row_runs_seeking_with_another_tasks_factors():
    assert "seeking_from_seeking_mmlu" in FIXED and "seeking_from_" not in FIXED
    assert base_method("seeking_from_seeking_mmlu") == "seeking"
    assert transfer_source("seeking_from_seeking_mmlu") == "seeking_mmlu" and transfer_source("seeking") is None
    spec = method_spec("seeking_from_seeking_mmlu")
    assert spec.label == "Seeking (extracted from seeking_mmlu)" and spec.needs == ("extract",)


def result(tmp_path, task, source, seed, metrics):
    path = tmp_path / f"{source}-{task}-{seed}.json"
    path.write_text(json.dumps({"method": f"seeking_from_seeking_{source}", "pair": "llama2_base", "task": task,
                                "seed": seed, "metrics": metrics}))
    return path


def test_the_table_fills_seekings_columns_with_published_and_differences(tmp_path):
    paths = [result(tmp_path, "seeking_gsm8k_0shot", "gsm", 1, {"exact_match,none": 0.25}),
             result(tmp_path, "seeking_gsm8k_0shot", "gsm", 2, {"exact_match,none": 0.27}),
             result(tmp_path, "seeking_superni", "gsm", 1, {"exact_match,none": 0.20, "rougeL,none": 0.40}),
             result(tmp_path, "seeking_superni", "gsm", 2, {"exact_match,none": 0.30, "rougeL,none": 0.44})]
    table = transfer_table(paths)
    assert list(table.columns) == ["GSM8K 0-shot", "Super-NI EM", "Super-NI ROUGE-L"]
    assert table.loc[("llama2_base", "gsm")].tolist() == pytest.approx([26.0, 25.0, 42.0])  # means over seeds
    shown = with_published(table, ["llama2_base"])
    published = TRANSFER["gsm"].scores
    assert shown.loc[("llama2_base", "gsm", "published")].tolist() == [published["GSM8K 0-shot"],
                                                                       published["Super-NI EM"],
                                                                       published["Super-NI ROUGE-L"]]
    assert shown.loc[("llama2_base", "gsm", "difference"), "GSM8K 0-shot"] == pytest.approx(26.0 - 25.30)
    assert len(with_published(table, [])) == 1  # another pair's checkpoints: no published row
    out = {ext: tmp_path / f"t.{ext}" for ext in ("csv", "md", "tex")}
    write_transfer(shown, str(out["csv"]), str(out["md"]), str(out["tex"]), "Run seeking: scores in %")
    tex = out["tex"].read_text()
    assert r"scores in \%" in tex and "Super-NI ROUGE-L" in tex


@pytest.mark.slow
def test_the_seeking_config_plans_the_transfer_grid(tmp_path):
    root = copy_workflow(tmp_path)
    out = snakemake(root, "-n", "--configfile", "config/config.yaml", "config/seeking.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == 2 + 4 and jobs["seeking_transfer_table"] == 1  # lora, seeking, four transfer rows
    # LIMA's factors are extracted (a transfer row), its adapters train on the evaluated tasks' sets only
    assert "results/seeking/extract/llama2_base/seeking_lima/factors.safetensors" in out
    assert "results/seeking/adapters/seeking_from_seeking_lima/llama2_base/seeking_gsm/seed1" in out
    assert "results/seeking/adapters/seeking_from_seeking_lima/llama2_base/seeking_lima/seed1" not in out
