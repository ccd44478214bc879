"""Seeking's own tables: its Table 1 and its task-transfer table from the Seeking config's eval JSONs. A
seeking_from_<task> row trains every task from <task>'s factors; evaluations fill Seeking's columns (Super-NI
twice: EM and ROUGE-L), each row beside the published one where the checkpoints are Seeking's."""

from __future__ import annotations

import json

import pytest
from conftest import copy_workflow, planned_jobs, snakemake

from pkt.methods import base_method
from pkt.methods.seeking.tables import main_table, published_rows, transfer_table, with_published, write_table
from pkt.report.published_seeking import LLAMA2_7B, LLAMA2_13B, PUBLISHED, TRANSFER, TRANSFER_SOURCE
from pkt.rows import fixed_row, method_spec, transfer_source

PAIRS = {"llama2_base": {"teacher": "big", "student": "small"}}
IDS = {"big": LLAMA2_13B, "small": LLAMA2_7B}


def test_a_transfer_row_runs_seeking_with_another_tasks_factors():
    assert fixed_row("seeking_from_seeking_mmlu") == ("seeking", {}) and fixed_row("seeking_from_") is None
    assert base_method("seeking_from_seeking_mmlu") == "seeking"
    assert transfer_source("seeking_from_seeking_mmlu") == "seeking_mmlu" and transfer_source("seeking") is None
    spec = method_spec("seeking_from_seeking_mmlu")
    assert spec.label == "Seeking (extracted from seeking_mmlu)" and spec.needs == ("extract",)


def result(tmp_path, method, pair, task, seed, metrics):
    path = tmp_path / f"{method}-{pair}-{task}-{seed}.json"
    path.write_text(json.dumps({"method": method, "pair": pair, "task": task, "seed": seed, "metrics": metrics}))
    return path


def test_the_transfer_table_fills_seekings_columns_with_published_and_differences(tmp_path):
    row = "seeking_from_seeking_gsm"
    paths = [result(tmp_path, row, "llama2_base", "seeking_gsm8k_0shot", 1, {"exact_match,none": 0.25}),
             result(tmp_path, row, "llama2_base", "seeking_gsm8k_0shot", 2, {"exact_match,none": 0.27}),
             result(tmp_path, row, "llama2_base", "seeking_superni", 1, {"exact_match,none": 0.2, "rougeL,none": 0.4}),
             result(tmp_path, row, "llama2_base", "seeking_superni", 2, {"exact_match,none": 0.3, "rougeL,none": 0.44})]
    table = transfer_table(paths)
    assert list(table.columns) == ["GSM8K 0-shot", "Super-NI EM", "Super-NI ROUGE-L"]  # no Avg: 3 of 7 columns
    assert table.loc[("llama2_base", "gsm")].tolist() == pytest.approx([26.0, 25.0, 42.0])  # means over seeds
    shown = with_published(table, published_rows(PAIRS, IDS, transfer=True))
    printed = TRANSFER["gsm"].scores
    assert shown.loc[("llama2_base", "gsm", "published")].tolist() == [
        printed["GSM8K 0-shot"], printed["Super-NI EM"], printed["Super-NI ROUGE-L"]]
    assert shown.loc[("llama2_base", "gsm", "difference"), "GSM8K 0-shot"] == pytest.approx(26.0 - 25.30)
    assert len(with_published(table, published_rows(PAIRS, {"big": "x/y", "small": LLAMA2_7B}, True))) == 1
    out = {ext: tmp_path / f"t.{ext}" for ext in ("csv", "md", "tex")}
    write_table(shown, str(out["csv"]), str(out["md"]), str(out["tex"]), "Run seeking: scores in %",
                source=TRANSFER_SOURCE)
    tex = out["tex"].read_text()
    assert r"scores in \%" in tex and "Super-NI ROUGE-L" in tex


def test_table_1_rows_come_from_the_vanilla_models_lora_and_seeking_with_an_average(tmp_path):
    values = {"seeking_gsm8k_0shot": {"exact_match,none": 0.1}, "seeking_gsm8k_8shot": {"exact_match,none": 0.2},
              "seeking_mmlu_0shot": {"acc,none": 0.3}, "seeking_mmlu_5shot": {"acc,none": 0.4},
              "seeking_superni": {"exact_match,none": 0.5, "rougeL,none": 0.6}}
    paths = [result(tmp_path, method, pair, task, 1, metrics) for method, pair in
             (("vanilla", "small"), ("vanilla", "big"), ("lora", "llama2_base"), ("seeking", "llama2_base"))
             for task, metrics in values.items()]
    table = main_table(paths, PAIRS)
    assert [row for _, row in table.index] == ["student", "teacher", "lora", "seeking"]
    assert table.loc[("llama2_base", "lora"), "MMLU 5-shot"] == pytest.approx(40.0)
    assert "Avg" not in table.columns  # AlpacaFarm (off) is missing: no average over six of seven
    shown = with_published(table, published_rows(PAIRS, IDS))
    lora = PUBLISHED[(LLAMA2_13B, LLAMA2_7B)]["lora"].scores
    difference = shown.loc[("llama2_base", "lora", "difference"), "GSM8K 8-shot"]
    assert difference == pytest.approx(20.0 - lora["GSM8K 8-shot"])


@pytest.mark.slow
def test_the_seeking_config_plans_the_transfer_grid(tmp_path):
    root = copy_workflow(tmp_path)
    out = snakemake(root, "-n", "--configfile", "config/config.yaml", "config/seeking.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == 2 + 4 + 8 and jobs["seeking_tables"] == 1  # lora, seeking, 4 transfer and 8 ablation rows
    # LIMA's factors are extracted (a transfer row), its adapters train on the evaluated tasks' sets only
    assert "results/seeking/extract/llama2_base/seeking_lima/factors.safetensors" in out
    assert "results/seeking/adapters/seeking_from_seeking_lima/llama2_base/seeking_gsm/seed1" in out
    assert "results/seeking/adapters/seeking_from_seeking_lima/llama2_base/seeking_lima/seed1" not in out
    assert "results/seeking/tables/seeking_transfer.tex" in out and "results/seeking/tables/seeking_main.md" in out
