"""pkt.methods.semalign.ablation (SemAlign's ablation table) and .analysis (CKA, bases check): known answers."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pkt.methods.semalign.ablation import ablation_table, configured_label, variants, write_ablation
from pkt.methods.semalign.analysis import BASES, RULES, bases_check, cka_matrix, layer_outputs
from pkt.methods.semalign.bases import recompose_cosine, semantic_bases

CONFIG = {"map": "logit", "variant": "v1", "signal": "delta", "interpolate": True}


def test_each_variant_flips_one_switch():
    found = variants(CONFIG)
    assert set(found) == {"map-cosine", "variant-v2", "layer-only", "output-only", "signal-output",
                          "interpolation-off"}
    assert found["map-cosine"] == {"label": "cosine map", "method": {"map": "cosine"}, "targets": {}}  # same targets
    assert found["variant-v2"] == {"label": "objective v2", "method": {"variant": "v2"}, "targets": {}}
    assert found["layer-only"]["method"] == {"output_weight": 0.0}
    assert found["output-only"]["method"] == {"layer_weight": 0.0}
    assert found["signal-output"]["targets"] == {"signal": "output"}
    assert found["interpolation-off"]["targets"] == {"interpolate": False}
    flipped = variants({"map": "cosine", "variant": "v2", "signal": "output", "interpolate": False})
    assert {"map-logit", "variant-v1", "signal-delta", "interpolation-on"} <= set(flipped)
    assert configured_label(CONFIG) == "as configured (logit map, v1, residual contribution, interpolation on)"


def write(tmp_path, method, seed, scores):
    """A toy_mmlu result as evaluate writes it: items 0-4 held out, 5-9 control."""
    groups = ["held_out"] * 5 + ["control"] * 5
    subsets = {g: {"value": sum(s for s, h in zip(scores, groups) if h == g) / 5, "n": 5} for g in set(groups)}
    path = tmp_path / f"{method}-{seed}.json"
    path.write_text(json.dumps({"task": "toy_mmlu", "method": method, "pair": "toy", "seed": seed,
                                "value": sum(scores) / 10, "n": 10, "subsets": subsets,
                                "items": {"id": [f"i{k}" for k in range(10)], "score": scores, "group": groups}}))
    return path


def test_ablation_table_differences_against_the_configured_row(tmp_path):
    base = [1.0] * 3 + [0.0] * 2 + [1.0] * 4 + [0.0]  # held-out 3/5, control 4/5
    better = [1.0] * 5 + [1.0] * 4 + [0.0]  # held-out 5/5
    configured = [write(tmp_path, "semalign", s, base) for s in (0, 1)]
    ablated = [write(tmp_path, "layer-only", s, better) for s in (0, 1)]
    ablated += [write(tmp_path, "interpolation-off", s, base) for s in (0, 1)]
    labels = {"semalign": "as configured", "layer-only": "layer term only", "interpolation-off": "interp off"}
    table = ablation_table(configured, ablated, labels, {"toy": {"teacher": "t", "student": "s"}},
                           n_boot=200, level=0.95, seed=0)
    assert list(table["Model"]) == ["as configured", "layer term only", "interp off †"]  # same seeds: no extra row
    assert table.loc[0, "MMLU held-out"] == "60.00 ± 0.00" and table.loc[0, "MMLU held-out vs configured"] == ""
    assert table.loc[1, "MMLU held-out vs configured"].startswith("+40.00")
    assert table.loc[1, "MMLU control vs configured"] == "+0.00 [+0.00, +0.00]"
    assert table.loc[2, "MMLU vs configured"] == "+0.00 [+0.00, +0.00]"
    assert list(table["identical_to"]) == ["", "", "as configured"]


def test_a_one_seed_variant_is_compared_with_the_configured_row_on_its_seed(tmp_path):
    """Configured on seeds 0-2 (seed 0 worst), variants on seed 0: each variant against configured seed 0,
    paired. A variant identical to configured seed 0 reads exactly +0.00 [+0.00, +0.00]; unpaired against
    the three-seed row (as before) it read +13.33 with a wide interval."""
    seed0 = [1.0] * 2 + [0.0] * 3 + [1.0] * 3 + [0.0] * 2  # held-out 2/5, control 3/5
    others = [1.0] * 4 + [0.0] + [1.0] * 5  # held-out 4/5, control 5/5
    configured = [write(tmp_path, "semalign", s, seed0 if s == 0 else others) for s in (0, 1, 2)]
    better = [1.0] * 3 + [0.0] * 2 + [1.0] * 3 + [0.0] * 2  # seed 0 with one more held-out fact
    ablated = [write(tmp_path, "interpolation-off", 0, seed0), write(tmp_path, "layer-only", 0, better)]
    labels = {"semalign": "as configured", "interpolation-off": "interp off", "layer-only": "layer term only"}
    table = ablation_table(configured, ablated, labels, {"toy": {"teacher": "t", "student": "s"}},
                           n_boot=500, level=0.95, seed=0)
    assert list(table["Model"]) == ["as configured", "as configured, seeds [0]", "interp off †", "layer term only"]
    assert list(table["Seeds"]) == [3, 1, 1, 1]
    assert table.loc[1, "MMLU"] == "50.00" and table.loc[1, "MMLU vs configured"] == ""
    for column in ("MMLU", "MMLU held-out", "MMLU control"):
        assert table.loc[2, f"{column} vs configured"] == "+0.00 [+0.00, +0.00]"
    assert table.loc[3, "MMLU held-out vs configured"].startswith("+20.00 [")  # 3/5 vs 2/5, not vs 3.33/5
    assert table.loc[3, "MMLU control vs configured"] == "+0.00 [+0.00, +0.00]"
    assert list(table["identical_to"]) == ["", "", "as configured", ""]
    note = table.attrs["note"]
    assert "variant's own seeds ([0]), paired by seed" in note and "test items only" in note
    assert "† interp off is identical to as configured on every item" in table.attrs["footnotes"][0]
    assert "the change altered no answer" in table.attrs["footnotes"][0]  # why, for a copy of a trained row
    out = tmp_path / "out"
    write_ablation(table, out / "a.csv", out / "a.md", out / "a.tex", "toy_mmlu ablation")
    md = (out / "a.md").read_text()
    assert md.startswith("toy_mmlu ablation. 'vs configured' = variant minus") and "identical_to" not in md
    assert "identical_to" in (out / "a.csv").read_text().splitlines()[0]
    assert "\\caption{toy\\_mmlu ablation. 'vs configured'" in (out / "a.tex").read_text()
    assert "\\textsuperscript{\\dag} interp off is identical" in (out / "a.tex").read_text()  # the footnote
    assert md.rstrip().endswith("not evidence about its own method.")  # the footnote, under the table


@pytest.fixture(scope="module")
def model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(cfg).eval()


def batch():
    ids = torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_cka_of_a_model_with_itself_has_a_unit_diagonal(model):
    outputs = layer_outputs(model, [batch()])
    assert len(outputs) == 3 and outputs[0].shape == (9 + 6, 16)  # real tokens only
    matrix = cka_matrix(outputs, outputs)
    assert [round(matrix[i][i], 6) for i in range(3)] == [1.0, 1.0, 1.0]
    assert all(0 <= v <= 1 + 1e-9 for row in matrix for v in row)


def test_bases_check_reports_every_layer_and_kind(model):
    outputs = layer_outputs(model, [batch()])
    found = bases_check(outputs, model.lm_head.weight.detach(), model.get_input_embeddings().weight.detach())
    assert list(found) == list(RULES) == ["cosine", "logit"]
    assert all(list(kinds) == list(BASES) for kinds in found.values())
    assert all(len(v) == 3 and all(-1 <= x <= 1 for x in v) for kinds in found.values() for v in kinds.values())
    # each number is recompose_cosine under its rule: the logit rule's coefficients are the model's own logits
    head = model.lm_head.weight.detach()
    assert found["logit"]["random"][1] != found["cosine"]["random"][1]
    assert found["cosine"][BASES[0]][2] == pytest.approx(recompose_cosine(outputs[2], semantic_bases(head.double())),
                                                         abs=1e-12)
    assert found["logit"][BASES[0]][2] == pytest.approx(
        recompose_cosine(outputs[2], semantic_bases(head.double()), head=head), abs=1e-12)
    with pytest.raises(ValueError, match="one shape"):
        bases_check(outputs, head, torch.eye(16))


def harmonic_frame(v: int, d: int) -> torch.Tensor:
    """v unit rows in R^d (d even, v > d) with W^T W = (v/d) I (a harmonic tight frame):
    row k = sqrt(2/d) (cos, sin)(2 pi k j / v) for j = 1..d/2."""
    angles = 2 * math.pi * torch.arange(v, dtype=torch.float64)[:, None] * torch.arange(1, d // 2 + 1) / v
    return math.sqrt(2 / d) * torch.cat([angles.cos(), angles.sin()], dim=1)


def test_bases_check_known_answers_under_both_rules(model):
    """A unit tight frame W as head and embedding: pinv(W) = (d/v) W^T, so the output bases, the embedding bases
    and B B^T = B W = (v/d) I coincide and both rules recompose every r exactly (cosine 1). Random bases under
    the logit rule recompose the logits W r with directions unrelated to W: a random direction, cos ~ 0."""
    outputs = layer_outputs(model, [batch()])
    frame = harmonic_frame(40, 16)
    assert torch.allclose(frame.T @ frame, 2.5 * torch.eye(16, dtype=torch.float64), atol=1e-12)
    found = bases_check(outputs, frame, frame)
    for rule in RULES:
        assert found[rule][BASES[0]] == pytest.approx([1.0] * 3, abs=1e-9)
        assert found[rule][BASES[1]] == pytest.approx([1.0] * 3, abs=1e-9)
    gen = torch.Generator().manual_seed(2)
    h = [torch.randn(300, 16, generator=gen, dtype=torch.float64) for _ in range(2)]
    wide = torch.randn(2000, 16, generator=gen, dtype=torch.float64)  # V >> D
    found = bases_check(h, wide, wide)
    assert all(abs(x) < 0.2 for x in found["logit"]["random"])
    assert all(x > 0.9 for x in found["logit"][BASES[0]])  # an isotropic head: unit pinv columns ~ pinv(W) x const


def test_the_bases_figure_and_json_name_each_rule(model, tmp_path):
    from pkt.methods.semalign.analysis import plot_bases, summary

    outputs = layer_outputs(model, [batch()])
    found = bases_check(outputs, model.lm_head.weight.detach(), model.get_input_embeddings().weight.detach())
    assert plot_bases({"teacher": found, "student": found}, tmp_path / "b.png", "t").stat().st_size > 0
    record = summary([[1.0]], [[1.0]], {"teacher": found})
    assert record["bases_rules"] == ["cosine", "logit"] and record["bases_check"]["teacher"] == found
    assert "B B^T r" in record["bases_definition"]["cosine"] and "B W r" in record["bases_definition"]["logit"]


def test_the_bases_figure_has_integer_layer_ticks_and_names_each_model_once():
    """A 2-layer student's axis shows 1 and 2 (not 1.0, 1.2, ... 2.0); a model named after its role is titled
    once ('teacher', not 'teacher (teacher)'); one legend for every panel."""
    import matplotlib.pyplot as plt

    from pkt.methods.semalign.analysis import bases_figure, model_label

    assert model_label("teacher", "teacher") == "teacher"
    assert model_label("teacher", "Llama-2-13b") == "teacher (Llama-2-13b)"
    checks = {model_label(role, role): {rule: {b: [0.5] * n for b in BASES} for rule in RULES}
              for role, n in (("teacher", 4), ("student", 2))}
    fig = bases_figure(checks, "t")
    try:
        axes = [ax for ax in fig.axes if ax.lines]
        assert [list(ax.get_xticks()) for ax in axes] == [[1, 2, 3, 4]] * 2 + [[1, 2]] * 2
        assert all(float(t).is_integer() for ax in axes for t in ax.get_xticks())
        titles = [ax.get_title().splitlines()[0] for ax in axes]
        assert titles == ["teacher, 4 layers"] * 2 + ["student, 2 layers"] * 2
        assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in axes)
    finally:
        plt.close(fig)


def test_the_gram_form_cka_equals_pairwise_linear_cka(model):
    """One unit Gram matrix per layer, computed once, gives each pair's linear CKA (the reference formula)."""
    from pkt.methods.semalign.bases import linear_cka

    gen = torch.Generator().manual_seed(0)
    teacher = [torch.randn(15, 24, generator=gen) for _ in range(3)]
    student = [torch.randn(15, 16, generator=gen), teacher[1][:, :16] * 3.0]
    matrix = cka_matrix(teacher, student)
    for i, t in enumerate(teacher):
        for j, s in enumerate(student):
            assert matrix[i][j] == pytest.approx(linear_cka(t, s), abs=1e-12)


def test_a_token_sample_is_the_same_rows_for_every_model_and_all_rows_when_small(model):
    from pkt.methods.semalign.analysis import token_sample

    batches = [batch(), batch()]  # 15 real tokens each
    everything = layer_outputs(model, batches)
    keep = token_sample(batches, 10, seed=0)
    assert sum(len(k) for k in keep) == 10 and all(int(k.max()) < 15 for k in keep if len(k))
    sampled = layer_outputs(model, batches, keep)
    flat = torch.cat([k + 15 * b for b, k in enumerate(keep)])
    assert all(torch.equal(s, e[flat]) for s, e in zip(sampled, everything))  # the chosen rows, in order
    assert [k.tolist() for k in token_sample(batches, 10, seed=0)] == [k.tolist() for k in keep]  # fixed
    assert [len(k) for k in token_sample(batches, 100)] == [15, 15]
