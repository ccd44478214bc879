"""Seeking's ablations: rows ``seeking_<switch>_<variant>`` train Seeking from factors cut with one switch of the
extraction changed, from the same sensitivity pass; their table sets each variant's average beside the full
method's and the published bars (LLaMA-1 13B -> 7B and 30B -> 7B)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from conftest import REPO, copy_workflow, planned_jobs, snakemake

from pkt.config_checks import config_errors
from pkt.methods import base_method
from pkt.methods.seeking.extract import GROUPS, LAYER_CHOICES, STRUCTURES, ExtractSettings, extract
from pkt.methods.seeking.tables import AVG, VS_FULL, ablation_pairs, ablation_table, ablation_with_published
from pkt.report.published_seeking import ABLATION_PAIR_NAMES, ABLATIONS, LLAMA1_7B, LLAMA1_13B
from pkt.rows import ABLATIONS as ROWS
from pkt.rows import FULL, ablation_of, ablation_rows, extract_overrides, fixed_row, method_spec

COLUMNS = {"seeking_gsm8k_0shot": "exact_match", "seeking_mmlu_0shot": "acc"}  # two of Table 1's seven


def test_the_rows_are_the_charts_variants_and_each_changes_one_switch():
    assert ablation_rows(["modules", "layers"]) == [  # ABLATIONS' order, whatever order the config names them
        "seeking_layers_random", "seeking_layers_first", "seeking_layers_last",
        "seeking_modules_embedding", "seeking_modules_ffn", "seeking_modules_attention"]
    assert ablation_of("seeking_structure_rowcol") == ("structure", "rowcol") and ablation_of("seeking") is None
    assert extract_overrides("seeking_modules_ffn") == {"modules": ["ffn"]}
    assert extract_overrides("seeking_layers_last") == {"layers": "last"} and extract_overrides("lora") == {}
    assert fixed_row("seeking_layers_last") == ("seeking", {}) and base_method("seeking_layers_last") == "seeking"
    assert method_spec("seeking_structure_random").label == "Seeking (structure: random)"
    # every variant is a value the extraction takes, and the published charts have a bar for it and the full method
    assert set(ROWS["layers"]) < set(LAYER_CHOICES) and set(ROWS["structure"]) < set(STRUCTURES)
    assert set(ROWS["modules"]) == set(GROUPS) - {"norm"}
    for switch, variants in ROWS.items():
        assert {*variants, FULL[switch]} <= set(ABLATIONS[switch])


def test_a_variant_cuts_other_factors_from_the_same_sensitivity():
    """A 4-layer teacher -> 2-layer student whose sensitivity makes layers 2 and 4 the top two: the full method
    keeps (2, 4), "first" (1, 2), "last" (3, 4); modules=[ffn] cuts the FFN matrices only."""
    torch.manual_seed(0)
    teacher, sens, shapes = {}, {}, {}
    for layer in range(4):
        for module, shape in (("self_attn.q_proj", (8, 8)), ("mlp.up_proj", (12, 8))):
            name = f"model.layers.{layer}.{module}.weight"
            teacher[name] = torch.randn(shape)
            sens[name] = torch.full(shape, 10.0 if layer in (1, 3) else 1.0)
            shapes[f"model.layers.{layer % 2}.{module}.weight"] = (shape[0] // 2, shape[1] // 2)
    kept = {}
    for layers in ("sensitivity", "first", "last"):
        _, record = extract(teacher, sens, shapes, 4, 2, 2, ExtractSettings(layers=layers))
        kept[layers] = record["kept_layers"]
    assert kept == {"sensitivity": [2, 4], "first": [1, 2], "last": [3, 4]}
    factors, _ = extract(teacher, sens, shapes, 4, 2, 2, ExtractSettings(modules=("ffn",)))
    assert sorted(factors) == ["model.layers.0.mlp.up_proj", "model.layers.1.mlp.up_proj"]


def result(tmp_path, method, task, seed, value, pair="llama1_13b_7b"):
    path = tmp_path / f"{method}-{pair}-{task}-{seed}.json"
    path.write_text(json.dumps({"method": method, "pair": pair, "task": task, "seed": seed,
                                "metrics": {f"{COLUMNS[task]},none": value}}))
    return path


def test_the_table_puts_each_variant_beside_the_full_method_and_the_published_bars(tmp_path):
    scores = {"seeking": (0.30, 0.50), "seeking_layers_random": (0.20, 0.40), "seeking_layers_first": (0.25, 0.45),
              "seeking_layers_last": (0.35, 0.55)}  # (GSM8K, MMLU) of seed 1; seed 2 adds 0.02 to each
    paths = [result(tmp_path, row, task, seed, value + 0.02 * (seed - 1))
             for row, values in scores.items() for task, value in zip(COLUMNS, values) for seed in (1, 2)]
    table = ablation_table(paths, ["layers"])
    assert [variant for _, _, variant in table.index] == ["random", "first", "last", "sensitivity"]
    assert table.loc[("llama1_13b_7b", "layers", "random"), AVG] == pytest.approx(31.0)  # mean of 21 and 41
    assert table.loc[("llama1_13b_7b", "layers", "sensitivity"), AVG] == pytest.approx(41.0)
    assert table.loc[("llama1_13b_7b", "layers", "last"), VS_FULL] == pytest.approx(5.0)
    ids = {"llama1_13b": LLAMA1_13B, "llama1_7b": LLAMA1_7B}
    matched = ablation_pairs({"llama1_13b_7b": {"teacher": "llama1_13b", "student": "llama1_7b"}}, ids)
    assert matched == {"llama1_13b_7b": 0}
    shown = ablation_with_published(table, matched, complete=False)
    published = shown.loc[("llama1_13b_7b", "layers", "random", "published")]
    assert published[AVG] == 28.03 and published[VS_FULL] == pytest.approx(28.03 - 28.22)
    difference = shown.loc[("llama1_13b_7b", "layers", "random", "difference")]
    assert math.isnan(difference[AVG])  # two of seven columns: the averages are not comparable
    assert difference[VS_FULL] == pytest.approx(-10.0 - (28.03 - 28.22))
    other = ablation_with_published(table, {"llama1_13b_7b": None}, complete=False)  # not Seeking's checkpoints
    values = [v for *_, v in other.index[:3]]
    assert values == ["reproduced", *(f"published {name}" for name in ABLATION_PAIR_NAMES)]
    assert other.loc[("llama1_13b_7b", "layers", "first", "published LLaMA-1 30B -> 7B"), AVG] == 28.42


def test_the_structure_chart_keeps_neuron_which_no_row_reproduces(tmp_path):
    paths = [result(tmp_path, row, task, 1, 0.4) for row in ("seeking", "seeking_structure_random",
                                                               "seeking_structure_rowcol") for task in COLUMNS]
    table = ablation_table(paths, ["structure"])
    assert [v for *_, v in table.index] == ["random", "neuron", "rowcol", "submatrix"]
    assert math.isnan(table.loc[("llama1_13b_7b", "structure", "neuron"), AVG])
    with pytest.raises(ValueError, match="neither seeking nor an ablation row"):
        ablation_table([result(tmp_path, "lora", "seeking_mmlu_0shot", 1, 0.4)], ["structure"])


def test_an_ablation_needs_the_seeking_row_as_the_full_method():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["seeking"].update(ablation=["layers", "modules"], layers="random", modules=["ffn"])
    config["methods"] = ["lora"]
    errors = config_errors(config)
    assert any("seeking.ablation: each variant is compared with the seeking row" in e for e in errors)
    assert any("seeking.layers is 'random'" in e for e in errors) and any("seeking.modules is" in e for e in errors)


@pytest.mark.slow
def test_one_extract_job_cuts_every_variant_and_each_row_trains_from_its_own(tmp_path):
    root = copy_workflow(tmp_path)
    out = snakemake(root, "-n", "--configfile", "config/config.yaml", "config/seeking.yaml", "-p").stdout
    assert planned_jobs(out)["extract_seeking"] == 1
    for row in ablation_rows(["layers", "structure", "modules"]):
        assert f"results/seeking/extract/llama2_base/seeking_gsm/{row}/factors.safetensors" in out
        assert f"results/seeking/adapters/{row}/llama2_base/seeking_superni/seed1" in out
    assert "results/seeking/tables/seeking_ablation.tex" in out
