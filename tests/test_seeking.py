"""pkt.methods.seeking.extract and the ``seeking`` method: known answers for every step of the extraction and the
delta trick."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from pkt.methods.seeking.extract import (
    ExtractSettings,
    best_block,
    brute_force_block,
    choose_layers,
    delta_weight,
    extract,
    layer_scores,
    lora_factors,
    save_factors,
    select,
    sensitivity,
    stack_adapter,
    start_factors,
)


# ---------------------------------------------------------------------------------------- block search --
@pytest.mark.parametrize("seed", range(40))
def test_block_search_equals_the_loop_over_every_position(seed):
    gen = torch.Generator().manual_seed(seed)
    big_n, big_m = (int(x) for x in torch.randint(1, 13, (2,), generator=gen))
    n, m = int(torch.randint(1, big_n + 1, (1,), generator=gen)), int(torch.randint(1, big_m + 1, (1,), generator=gen))
    if seed % 2:  # small integers: many exact ties, which must go to the first position in row-major order
        sens = torch.randint(0, 3, (big_n, big_m), generator=gen).float()
    else:
        sens = torch.rand(big_n, big_m, generator=gen)
    expected = brute_force_block(sens, (n, m))
    for max_elements in (1, 2 * big_m + 2, 1 << 24):  # one row per chunk, two rows, everything at once
        i, j, value = best_block(sens, (n, m), max_elements=max_elements)
        assert (i, j) == expected[:2], (sens, (n, m), max_elements)
        assert value == pytest.approx(expected[2], rel=1e-12, abs=1e-12)


def test_ties_go_to_the_first_position_in_row_major_order():
    sens = torch.zeros(5, 6)
    sens[3, 1] = sens[1, 4] = sens[1, 5] = 1.0  # three equal maxima for a 1 x 2 block: (1, 4) comes first
    assert best_block(sens, (1, 2))[:2] == (1, 4)
    assert best_block(torch.ones(4, 4), (2, 2))[:2] == (0, 0)


def test_a_planted_block_is_found_with_its_share():
    sens = torch.rand(40, 30) * 0.01
    sens[17:25, 9:21] += 1.0
    chosen = select(sens, (8, 12))
    assert chosen.offset == (17, 9)
    assert chosen.share == pytest.approx(float(sens[17:25, 9:21].double().sum() / sens.double().sum()))
    weight = torch.arange(40 * 30.0).reshape(40, 30)
    assert torch.equal(chosen.take(weight), weight[17:25, 9:21])


def test_rowcol_and_random_structures():
    sens = torch.zeros(6, 5)
    sens[[1, 4]] += 1.0
    sens[:, [0, 3]] += 1.0
    rowcol = select(sens, (2, 2), "rowcol")
    assert rowcol.rows.tolist() == [1, 4] and rowcol.cols.tolist() == [0, 3] and rowcol.offset is None
    first, again, other = (select(sens, (3, 2), "random", seed=s) for s in ("a", "a", "b"))
    assert first.rows.tolist() == again.rows.tolist() and first.rows.tolist() == sorted(first.rows.tolist())
    assert (first.rows.tolist(), first.cols.tolist()) != (other.rows.tolist(), other.cols.tolist())


# -------------------------------------------------------------------------------------- factorisation --
def test_rank_r_error_is_the_norm_of_the_dropped_singular_values():
    block = torch.randn(12, 9, generator=torch.Generator().manual_seed(0))
    s = torch.linalg.svdvals(block)
    for rank in (1, 4, 9):
        b, a, energy = lora_factors(block, rank)
        assert b.shape == (12, rank) and a.shape == (rank, 9)
        error = torch.linalg.matrix_norm(block - b @ a)
        assert float(error) == pytest.approx(float(s[rank:].square().sum().sqrt()), abs=1e-4)
        assert energy == pytest.approx(float(s[:rank].square().sum() / s.square().sum()), rel=1e-5)


def test_embedding_factors_use_peft_layout():
    block = torch.randn(30, 8)  # HF embedding layout [V, d]
    b, a, _ = lora_factors(block, 8, embedding=True)
    assert b.shape == (8, 8) and a.shape == (8, 30)  # B [d, r], A [r, V]
    assert torch.allclose((b @ a).T, block, atol=1e-5)  # full rank: exact


# --------------------------------------------------------------------------------------- layer choice --
def test_layer_choice_keeps_teacher_order():
    scores = [0.5, 3.0, 0.1, 2.0, 1.0]
    assert choose_layers(scores, 3) == [2, 4, 5]  # top-3 by score (layers 2, 4, 5), in index order
    assert choose_layers(scores, 2, "first") == [1, 2]
    assert choose_layers(scores, 2, "last") == [4, 5]
    random_pick = choose_layers(scores, 3, "random", seed=1)
    assert random_pick == sorted(random_pick) and len(set(random_pick)) == 3
    with pytest.raises(ValueError, match="L_S=6"):
        choose_layers(scores, 6)


# ---------------------------------------------------------------------------------------- sensitivity --
class SignedToy(nn.Module):
    """loss = sum(w * x) with x = +1 or -1 by the example's first token: opposite gradients by design."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([2.0, -3.0]))

    def forward(self, input_ids, labels=None, attention_mask=None, use_cache=False):
        sign = 1.0 if int(input_ids[0, 0]) == 1 else -1.0
        return SimpleNamespace(loss=(self.w * sign).sum())


def test_abs_is_taken_per_example_then_summed():
    model = SignedToy()
    examples = [{"input_ids": torch.tensor([[1]]), "labels": torch.tensor([[1]])},
                {"input_ids": torch.tensor([[2]]), "labels": torch.tensor([[2]])}]
    sens, count = sensitivity(model, examples, disable_progress=True)
    assert count == 2
    # per example |w * g| = |w| each time -> 2|w|; the abs of the summed gradient would be |w * 0| = 0
    assert torch.equal(sens["w"], torch.tensor([4.0, 6.0]))
    assert model.w.grad is None and model.w.requires_grad


@pytest.fixture(scope="module")
def pair():
    """A tiny teacher (4 layers, d 24) and student (2 layers, d 16) sharing a vocabulary of 50."""
    from transformers import LlamaConfig, LlamaForCausalLM

    def build(d: int, layers: int, seed: int):
        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=50, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=layers,
                          num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                          tie_word_embeddings=False)
        return LlamaForCausalLM(cfg).eval()

    return build(24, 4, 0), build(16, 2, 1)


def seeds(n: int = 3) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        ids = torch.randint(0, 50, (1, 10), generator=gen)
        labels = ids.clone()
        labels[:, :4] = -100
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels})
    return out


def test_sensitivity_matches_per_example_autograd(pair):
    teacher, _ = pair
    sens, _ = sensitivity(teacher, seeds(), disable_progress=True)
    params = dict(teacher.named_parameters())
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    for ex in seeds():
        grads = torch.autograd.grad(teacher(**ex).loss, list(params.values()))
        for (n, p), g in zip(params.items(), grads):
            expected[n] += (p.detach() * g).abs()
    for n in params:
        assert torch.allclose(sens[n], expected[n], rtol=1e-5, atol=1e-8), n
    assert all(p.grad is None for p in teacher.parameters())
    scores, groups = layer_scores(sens, 4)
    per_layer = [sum(float(s.double().sum()) for n, s in sens.items() if f"layers.{i}." in n) for i in range(4)]
    assert scores == pytest.approx(per_layer) and sum(groups[0].values()) == pytest.approx(scores[0])


def extracted(pair, **options):
    teacher, student = pair
    sens, _ = sensitivity(teacher, seeds(), disable_progress=True)
    shapes = {n: tuple(p.shape) for n, p in student.named_parameters()}
    weights = dict(teacher.named_parameters())
    return extract(weights, sens, shapes, 4, 2, rank=4, settings=ExtractSettings(**options))


def test_only_the_ablation_that_is_set_changes_the_choice(pair):
    base_factors, base = extracted(pair)
    blocks = {m["teacher"]: m["offset"] for m in base["matrices"]}
    assert base["kept_layers"] == choose_layers(base["layer_scores"], 2)
    assert {m["group"] for m in base["matrices"]} == {"attention", "ffn", "embedding"}
    assert len(base_factors) == 2 * 7 + 2  # 7 projections x 2 student layers + embed_tokens + lm_head

    _, first = extracted(pair, layers="first")
    assert first["kept_layers"] == [1, 2]
    for m in first["matrices"]:  # a teacher matrix chosen by both runs gets the same block
        if m["teacher"] in blocks:
            assert m["offset"] == blocks[m["teacher"]]

    _, rowcol = extracted(pair, structure="rowcol")
    assert rowcol["kept_layers"] == base["kept_layers"]
    assert all(m["offset"] is None for m in rowcol["matrices"])

    ffn_factors, ffn = extracted(pair, modules=("ffn",))
    assert ffn["kept_layers"] == base["kept_layers"] and {m["group"] for m in ffn["matrices"]} == {"ffn"}
    assert {m["offset"] is not None and m["offset"] == blocks[m["teacher"]] for m in ffn["matrices"]} == {True}
    assert all(k.split(".")[-1] in ("gate_proj", "up_proj", "down_proj") for k in ffn_factors)


def test_teacher_layers_are_renamed_to_student_layers(pair):
    _, record = extracted(pair, layers="last")
    names = {m["teacher"]: m["student"] for m in record["matrices"]}
    assert names["model.layers.2.self_attn.q_proj.weight"] == "model.layers.0.self_attn.q_proj"
    assert names["model.layers.3.mlp.down_proj.weight"] == "model.layers.1.mlp.down_proj"
    assert names["lm_head.weight"] == "lm_head"


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="seeking.layers"):
        ExtractSettings(layers="best")
    with pytest.raises(ValueError, match="seeking.modules"):
        ExtractSettings(modules=("mlp",))


# ------------------------------------------------------------------------------------- delta and export --
def test_stack_adapter_reproduces_the_trained_delta():
    gen = torch.Generator().manual_seed(0)
    b1, a1, b0, a0 = (torch.randn(*s, generator=gen) for s in ((6, 2), (2, 5), (6, 2), (2, 5)))
    (b, a), = stack_adapter({"m": (b1, a1)}, {"m": (b0, a0)}).values()
    assert b.shape == (6, 4) and a.shape == (4, 5)
    assert torch.allclose(b @ a, b1 @ a1 - b0 @ a0, atol=1e-6)
    (b, a), = stack_adapter({"m": (b1, a1)}, {}).values()  # a module LoRA trained from the standard init
    assert torch.allclose(b @ a, b1 @ a1)


def test_start_factors_share_the_root_of_the_scale():
    b0, a0 = torch.tensor([[2.0], [4.0]]), torch.tensor([[1.0, 3.0]])
    (b, a), = start_factors({"m": (b0, a0)}, 4.0).values()  # r 4, alpha 16: s = 4, sqrt(s) = 2
    assert torch.equal(b, torch.tensor([[1.0], [2.0]])) and torch.equal(a, torch.tensor([[0.5, 1.5]]))
    assert torch.equal(4.0 * b @ a, b0 @ a0)  # s B A is the extracted block
    assert torch.equal(start_factors({"m": (b0, a0)}, 1.0)["m"][0], b0)  # alpha = r (the reference): as extracted


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture()
def seeking_student(pair, tmp_path):
    """The student wrapped by the seeking method, with factors extracted from the teacher."""
    from pkt.methods import LoraSettings, get_method

    factors, _ = extracted(pair)
    folder = tmp_path / "extract"
    folder.mkdir()
    save_factors(folder / "factors.safetensors", factors)
    _, student = pair
    student_dir = tmp_path / "student"
    student.save_pretrained(student_dir)
    settings = LoraSettings(r=4, alpha=8, dropout=0.0)
    method = get_method("seeking").from_dict(vars(settings), {"extract": folder})
    from transformers import LlamaForCausalLM

    fresh = LlamaForCausalLM.from_pretrained(student_dir).eval()
    return method, method.init_adapter(fresh, None).eval(), student_dir, factors


def test_student_is_unchanged_at_step_0(pair, seeking_student):
    _, student = pair
    method, model, _, factors = seeking_student
    ids = seeds()[0]["input_ids"]
    assert torch.allclose(logits(model, ids), logits(student, ids), atol=1e-5)
    lora_b = dict(model.named_parameters())["base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight"]
    # LoRA starts from the teacher's B / sqrt(alpha / r) = B / sqrt(2) (r 4, alpha 8)
    torch.testing.assert_close(lora_b.detach(), factors["model.layers.0.mlp.up_proj"][0] / math.sqrt(2.0))
    assert float(lora_b.detach().abs().sum()) > 0
    embed = dict(model.named_parameters())["base_model.model.model.embed_tokens.lora_embedding_A.default"]
    assert embed.shape == (4, 50)


def test_the_adapters_delta_at_step_0_is_the_extracted_block_when_alpha_is_not_r(pair, seeking_student):
    """r 4, alpha 8 (s = 2): peft's delta s B A of every extracted module equals the rank-r block B0 A0, and the
    base weight holds W - B0 A0 (unscaled factors would start the LoRA at 2 B0 A0)."""
    _, student = pair
    _, model, _, factors = seeking_student
    modules, weights = dict(model.named_modules()), dict(student.named_parameters())
    for name, (b0, a0) in factors.items():
        layer = modules[f"base_model.model.{name}"]
        embedding = "embed_tokens" in name
        assert layer.scaling["default"] == 2.0
        block = delta_weight(b0, a0, embedding)
        torch.testing.assert_close(layer.get_delta_weight("default"), block, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(layer.base_layer.weight, weights[f"{name}.weight"] - block, atol=1e-6, rtol=1e-5)


def test_saved_adapter_on_the_vanilla_student_reproduces_the_trained_model(seeking_student, tmp_path):
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    method, model, student_dir, _ = seeking_student
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # stand-in for training: move every trainable factor
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    ids = seeds()[1]["input_ids"]
    trained = logits(model, ids)
    method.export_adapter(model, tmp_path / "adapter")
    vanilla = LlamaForCausalLM.from_pretrained(student_dir).eval()
    loaded = PeftModel.from_pretrained(vanilla, str(tmp_path / "adapter")).eval()
    assert loaded.peft_config["default"].r == 8 and loaded.peft_config["default"].lora_alpha == 16
    assert torch.allclose(logits(loaded, ids), trained, atol=1e-5)
    assert not torch.allclose(trained, logits(LlamaForCausalLM.from_pretrained(student_dir).eval(), ids), atol=1e-3)


def test_missing_extract_is_named(tmp_path):
    from pkt.methods import get_method

    method = get_method("seeking").from_dict({}, {"extract": tmp_path / "nowhere"})
    with pytest.raises(FileNotFoundError, match="extract_seeking"):
        method.factors_path()


def test_energy_and_share_are_fractions(pair):
    _, record = extracted(pair)
    for m in record["matrices"]:
        assert 0 < m["energy"] <= 1 + 1e-6 and 0 < m["share"] <= 1 + 1e-9
        assert math.isfinite(m["share"])


def test_the_fp32_sums_of_a_13b_teacher_go_to_the_host_of_an_80gb_gpu():
    from pkt.methods.seeking.extract import accumulator_device

    cuda, thirteen_b, gb = torch.device("cuda"), 13_015_864_320, 2**30
    assert accumulator_device(thirteen_b, torch.device("cpu")) == torch.device("cpu")
    assert accumulator_device(thirteen_b, cuda, free_bytes=(80 - 26) * gb) == torch.device("cpu")  # 52 GB: no room
    assert accumulator_device(6_738_415_616, cuda, free_bytes=(80 - 14) * gb) == cuda  # a 7B's 27 GB fit beside it


@pytest.mark.parametrize("teacher_tied", [False, True], ids=["untied-teacher", "tied-teacher"])
def test_a_tied_student_is_unchanged_at_step_0_and_its_adapter_reproduces_training(teacher_tied, tmp_path):
    """SmolLM2 and Qwen2.5 tie the LM head to the embedding: the delta must not reach the head through the
    shared weight, an untied teacher's head must find the student's, and the export must keep every term."""
    from peft import PeftModel
    from tiny_llama import tiny
    from transformers import AutoModelForCausalLM

    from pkt.methods import get_method
    from pkt.methods.seeking.extract import student_shapes

    teacher, student = tiny(24, 4, 0, tied=teacher_tied), tiny(16, 2, 1, tied=True)
    student_dir, folder = tmp_path / "student", tmp_path / "extract"
    student.save_pretrained(student_dir)
    folder.mkdir()
    shapes, n_student = student_shapes(student_dir)
    sens, _ = sensitivity(teacher, seeds(), disable_progress=True)
    factors, _ = extract(dict(teacher.named_parameters()), sens, shapes, 4, n_student, rank=4,
                         settings=ExtractSettings())
    assert "model.embed_tokens" in factors and ("lm_head" in factors) == (not teacher_tied)
    save_factors(folder / "factors.safetensors", factors)

    def vanilla():
        model = AutoModelForCausalLM.from_pretrained(student_dir).eval()
        assert model.lm_head.weight is model.model.embed_tokens.weight  # tied, as saved
        return model

    method = get_method("seeking").from_dict({"r": 4, "alpha": 8, "dropout": 0.0}, {"extract": folder})
    model = method.init_adapter(vanilla(), None).eval()
    ids = seeds()[0]["input_ids"]
    assert (logits(model, ids) - logits(student, ids)).abs().max() < 1e-5
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # stand-in for training: move every trainable factor
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    trained = logits(model, ids)
    method.export_adapter(model, tmp_path / "adapter")
    loaded = PeftModel.from_pretrained(vanilla(), str(tmp_path / "adapter")).eval()
    assert (logits(loaded, ids) - trained).abs().max() < 1e-5
    assert (trained - logits(student, ids)).abs().max() > 1e-3


def test_a_teacher_with_appended_tokens_gives_the_shared_rows_of_its_embedding():
    """WizardCoder (32,001 tokens) -> Llama-2-7B (32,000): the embedding and head blocks are cut from the
    teacher's first 32,000 rows, as if the appended token were not there."""
    from tiny_llama import tiny

    teacher, student = tiny(24, 4, 0, vocab=51), tiny(16, 2, 1, vocab=50)
    sens, _ = sensitivity(teacher, seeds(), disable_progress=True)
    shapes = {n: tuple(p.shape) for n, p in student.named_parameters()}
    weights = dict(teacher.named_parameters())
    factors, record = extract(weights, sens, shapes, 4, 2, rank=4, settings=ExtractSettings())
    cut = {n: (w[:50] if "embed_tokens" in n or "lm_head" in n else w) for n, w in weights.items()}
    cut_sens = {n: (s[:50] if "embed_tokens" in n or "lm_head" in n else s) for n, s in sens.items()}
    expected, _ = extract(cut, cut_sens, shapes, 4, 2, rank=4, settings=ExtractSettings())
    for module in ("model.embed_tokens", "lm_head"):
        assert all(torch.equal(x, y) for x, y in zip(factors[module], expected[module]))
    assert {m["teacher_rows"] for m in record["matrices"] if m["group"] == "embedding"} == {51}
    with pytest.raises(ValueError, match="vocabularies differ"):  # a student with rows the teacher lacks
        extract(cut, cut_sens, {**shapes, "model.embed_tokens.weight": (51, 16)}, 4, 2, rank=4,
                settings=ExtractSettings())


# ------------------------------------------------------------------------------------------------ figure --
def test_the_sensitivity_figure_gives_the_layer_total_its_own_scale(tmp_path):
    """The groups share one colour scale and the layer total (their sum, always larger) has its own panel and
    colour bar, so it no longer stretches the groups' scale; kept layers are outlined in both panels."""
    import matplotlib.pyplot as plt

    from pkt.methods.seeking.plot import plot_sensitivity, sensitivity_figure

    groups = [{"attention": 150.0, "ffn": 310.0, "norm": 30.0}, {"attention": 120.0, "ffn": 100.0, "norm": 18.0},
              {"attention": 125.0, "ffn": 140.0, "norm": 20.0}]
    record = {"group_scores": groups, "layer_scores": [sum(g.values()) for g in groups], "kept_layers": [1, 3]}
    fig = sensitivity_figure(record, "t")
    try:
        images = [(ax, ax.images[0]) for ax in fig.axes if ax.images]
        assert len(images) == 2 and len([ax for ax in fig.axes if not ax.images]) == 2  # two colour bars
        (ax_groups, groups_image), (ax_total, total_image) = images
        assert [t.get_text() for t in ax_groups.get_xticklabels()] == ["attention", "ffn", "norm"]
        assert [t.get_text() for t in ax_total.get_xticklabels()] == ["layer total"]
        assert groups_image.get_clim() == pytest.approx((math.log10(18.0), math.log10(310.0)))
        assert total_image.get_clim() == pytest.approx((math.log10(238.0), math.log10(490.0)))
        assert len(ax_groups.patches) == len(ax_total.patches) == 2
    finally:
        plt.close(fig)
    assert plot_sensitivity(record, tmp_path / "s.png", "t").stat().st_size > 1000
