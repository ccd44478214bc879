"""The ``semalign`` method and its stored teacher targets (pkt.methods.semalign.targets): known answers, tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_llama import batches, tiny

from pkt.layers.importance import decoder_layers, predicting_positions
from pkt.layers.pairing import pair_layers
from pkt.methods.semalign.bases import MAPS, map_matrix, map_rows, mapping_matrix, semantic_bases
from pkt.methods.semalign.store import Targets, load_map, write_targets
from pkt.methods.semalign.targets import compute_targets, layer_signals, trained_pairs


def heads_maps(student, teacher) -> dict[str, torch.Tensor]:
    """Both coefficient rules' matrices from the two models' heads (what teacher_targets stores)."""
    return {kind: map_matrix(kind, student.lm_head.weight, teacher.lm_head.weight) for kind in MAPS}


@pytest.fixture()
def setup(tmp_path):
    """Teacher (4 x 24) and student (2 x 16); targets of the critical pair written to disk."""
    teacher, student = tiny(24, 4, 0), tiny(16, 2, 1)
    pairing = pair_layers([1.0, 0.5, 3.0, 0.2], [1.0, 1.0])  # l* = 3 -> the pair (4, 2)
    pairs = trained_pairs(pairing, "critical", interpolate=True)
    maps = heads_maps(student, teacher)
    computed = compute_targets(teacher, batches(), pairs, "delta", topk=5)
    folder = tmp_path / "targets"
    folder.mkdir()
    write_targets(folder, computed, {"pairs": pairs, "signal": "delta", "topk": 5}, maps=maps)
    return teacher, student, pairs, maps, folder


def test_pairs_come_from_the_pairing_file():
    pairing = pair_layers([1.0, 0.5, 3.0, 0.2], [1.0, 1.0])
    assert trained_pairs(pairing, "critical", True) == [{"student": 2, "sources": [(4, 1.0)]}]
    assert [p["student"] for p in trained_pairs(pairing, "all", True)] == [1, 2]
    odd = pair_layers([1.0, 0.5, 3.0], [1.0, 1.0])  # 3 -> 2 layers: u = 1.5 at k = 1
    (first, second) = trained_pairs(odd, "all", True)
    assert first["sources"] == [(1, 0.5), (2, 0.5)] and trained_pairs(odd, "all", False)[0]["sources"] == [(1, 1.0)]


def test_targets_read_back_equal_targets_computed_on_the_fly(setup):
    """Stored rows: the teacher's layer-4 residual contribution at the positions that predict each response token
    (where the output term scores too), in fp16; both maps stored beside them."""
    teacher, _, _, maps, folder = setup
    targets = Targets(folder)
    assert targets.layers == [2] and len(targets) == 6 and targets.index["dtype"] == "float16"
    for i, batch in enumerate(batches()):
        signals, _ = layer_signals(teacher, batch, [3], "delta")
        prev = predicting_positions(batch["labels"] != -100)
        for b in range(prev.shape[0]):
            expected = signals[3][b][prev[b]]
            (stored,) = targets.teacher_layer(2, [3 * i + b], [int(prev[b].sum())])
            assert stored.dtype == torch.float32 and torch.equal(stored, expected.half().float())  # fp16 on disk
    with pytest.raises(ValueError, match="supervised positions"):
        targets.teacher_layer(2, [0], [3])
    for kind in MAPS:
        assert torch.equal(load_map(folder, kind), maps[kind])
    with pytest.raises(KeyError, match="semalign.map"):
        load_map(folder, "dual")


@pytest.mark.parametrize("kind", MAPS)
def test_the_method_maps_the_stored_rows_with_its_map(setup, kind):
    """SemAlign's targets = the stored teacher rows through ``semalign.map``'s matrix (cosine: rows normalised)."""
    _, student, _, maps, folder = setup
    method, _ = method_on(student, folder, map=kind)
    rows = torch.cat(Targets(folder).teacher_layer(2, [0, 1], [5, 8]))
    mapped = torch.cat(method.mapped(2, [0, 1], [5, 8], "cpu"))
    unit = rows / rows.norm(dim=-1, keepdim=True) if kind == "cosine" else rows
    assert torch.allclose(mapped, unit @ maps[kind].T, atol=1e-5)


def method_on(student, folder, **settings):
    from pkt.methods import get_method

    method = get_method("semalign").from_dict({"r": 4, "alpha": 8, "dropout": 0.0, **settings}, {"targets": folder})
    return method, method.init_adapter(student, None)


def test_student_unchanged_at_step_0_and_only_the_paired_layer_learns(setup):
    _, student, _, _, folder = setup
    ids = batches()[0]["input_ids"]
    with torch.no_grad():
        before = student(input_ids=ids).logits
    method, model = method_on(student, folder)
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, before, atol=1e-6)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n and "lora_" in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable} == {"v_proj", "o_proj", "up_proj", "down_proj"}
    batch = batches()[0]
    model.train()
    inputs = {**batch, "example_index": torch.tensor([0, 1, 2])}
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    method.aux_loss(model, inputs, out).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads and set(grads) <= set(trainable)
    assert any(float(g.abs().sum()) > 0 for g in grads.values())
    assert decoder_layers(model)[0].self_attn.v_proj.weight.grad is None


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_the_loss_falls_over_a_few_steps(setup, variant):
    _, student, _, _, folder = setup
    method, model = method_on(student, folder, variant=variant)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    batch = batches()[1]
    inputs = {**batch, "example_index": torch.tensor([3, 4, 5])}
    losses = []
    for _ in range(25):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss = method.aux_loss(model, inputs, out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.01, losses


def test_missing_targets_are_named(tmp_path):
    from pkt.methods import get_method

    method = get_method("semalign").from_dict({}, {"targets": tmp_path / "nowhere"})
    with pytest.raises(FileNotFoundError, match="teacher_targets"):
        method.targets()
    with pytest.raises(ValueError, match="semalign.variant"):
        get_method("semalign").from_dict({"variant": "v3"})
    with pytest.raises(ValueError, match="semalign.map"):
        get_method("semalign").from_dict({"map": "dual"})


def test_alignment_phase_uses_the_align_targets_and_the_layer_term_alone(setup, tmp_path):
    teacher, student, pairs, _, folder = setup
    align = folder / "align"
    align.mkdir()
    write_targets(align, compute_targets(teacher, batches(3), pairs, "delta", topk=5),
                  {"pairs": pairs, "signal": "delta", "topk": 5})
    method, model = method_on(student, folder, align_steps=2, align_lr=1e-4)
    assert method_on(tiny(16, 2, 1), folder)[0].align_phase() is None  # 0 steps: no phase
    with pytest.raises(KeyError, match="align_split"):
        method.align_phase()
    method.inputs["align_split"] = tmp_path / "align.jsonl"
    assert method.align_phase() == {"split": tmp_path / "align.jsonl", "steps": 2, "lr": 1e-4}
    batch = batches(3)[0]
    inputs = {**batch, "example_index": torch.tensor([0, 1, 2])}
    method.begin_align()
    assert method.targets().folder == align and method.supervised_weight == 0.0
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    layer_only = method.aux_loss(model, inputs, out)
    method.end_align()
    both = method.aux_loss(model, inputs, out)  # the train split's targets: the same first 3 examples here
    assert float(both) > float(layer_only)  # + the output term


@pytest.mark.parametrize("tied", [False, True], ids=["untied-student", "tied-student"])
def test_the_map_reads_a_saved_students_head_tied_or_not(tmp_path, tied):
    """A tied checkpoint (SmolLM2, Qwen2.5) stores no lm_head.weight: the head is the input embedding."""
    from safetensors import safe_open

    from pkt.methods.semalign.targets import student_maps

    teacher, student = tiny(24, 4, 0), tiny(16, 2, 1, tied=tied)
    student.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
        assert ("lm_head.weight" in set(f.keys())) == (not tied)
    maps, vocab = student_maps(teacher, tmp_path, ["teacher", "student"], False)
    expected = mapping_matrix(semantic_bases(student.get_output_embeddings().weight.double()),
                              semantic_bases(teacher.lm_head.weight.double()))
    assert vocab == 50 and sorted(maps) == sorted(MAPS)
    assert torch.allclose(maps["cosine"], expected, atol=1e-6)
    logit = torch.linalg.pinv(student.get_output_embeddings().weight.double()) @ teacher.lm_head.weight.double()
    assert torch.allclose(maps["logit"], logit.float(), atol=1e-5)


def test_an_untied_head_missing_from_a_checkpoint_is_named(tmp_path):
    from pkt.models.build import load_output_head

    tiny(16, 2, 1).save_pretrained(tmp_path)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tmp_path / "model.safetensors"))
    del tensors["lm_head.weight"]
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(KeyError, match="tie_word_embeddings"):
        load_output_head(tmp_path)


def test_the_residual_contribution_is_subtracted_in_fp32():
    """bf16 holds 1000 and 3 exactly but not 997: the bf16 difference is off by 1, as large as a small channel."""
    from pkt.methods.semalign.targets import residual_signal

    out, before = torch.tensor([1000.0, 2.5], dtype=torch.bfloat16), torch.tensor([3.0, 2.0], dtype=torch.bfloat16)
    assert (out - before).tolist() == [996.0, 0.5]  # what a bf16 subtraction gives
    assert residual_signal(out, before, "delta").tolist() == [997.0, 0.5]
    assert residual_signal(out, before, "delta").dtype == torch.float32
    assert residual_signal(out, None, "output") is out


def test_targets_refuse_a_batch_whose_ids_differ_with_the_same_counts(setup):
    """Another tokenizer can give the same number of response tokens (WizardCoder adds a [PAD]): the stored
    rows must not be read for other tokens."""
    *_, folder = setup
    targets = Targets(folder)
    batch = {**batches()[1], "example_index": torch.tensor([3, 4, 5])}
    assert targets.examples_of(batch) == ([3, 4, 5], [5, 8, 3])
    other = {**batch, "input_ids": batch["input_ids"].clone()}
    other["input_ids"][2, 1] = (other["input_ids"][2, 1] + 1) % 50  # one prompt token: the counts stay
    with pytest.raises(ValueError, match="example 5: its token ids differ"):
        Targets(folder).examples_of(other)
    padded = {**batch, "input_ids": batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 7)}
    assert Targets(folder).examples_of(padded)[0] == [3, 4, 5]  # padding is not part of an example


def test_half_precision_targets_give_the_losses_of_fp32_targets(setup, tmp_path):
    """float16 rows (the default on disk) against float32 rows of the same targets: the v1 layer loss and KD's
    top-k KL agree to the rounding of 11 significant bits (relative 2^-11), far below any training signal."""
    from pkt.methods.kd import kd_term
    from pkt.methods.semalign.bases import layer_cosine_loss

    teacher, student, pairs, maps, _ = setup
    computed = compute_targets(teacher, batches(), pairs, "delta", topk=5)
    for dtype in ("float16", "float32"):
        (tmp_path / dtype).mkdir()
        write_targets(tmp_path / dtype, computed, {"pairs": pairs}, dtype=dtype)
    half, full = Targets(tmp_path / "float16"), Targets(tmp_path / "float32")
    size = {dtype: (tmp_path / dtype / "teacher2.npy").stat().st_size for dtype in ("float16", "float32")}
    assert size["float16"] < 0.6 * size["float32"]
    examples, counts = list(range(6)), computed["counts"]
    assert torch.equal(torch.cat(full.teacher_layer(2, examples, counts)),
                       torch.from_numpy(computed["teacher_rows"][2]))

    def mapped(targets):
        return map_rows(torch.cat(targets.teacher_layer(2, examples, counts)), maps["logit"], "logit")

    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(sum(counts), 16, generator=gen)
    exact, rounded = layer_cosine_loss(hidden, mapped(full)), layer_cosine_loss(hidden, mapped(half))
    assert abs(float(rounded - exact)) < 2**-11 * float(exact)
    logits = torch.randn(sum(counts), 50, generator=gen)
    kl_full, kl_half = (kd_term(logits, *t.topk(examples, counts), temperature=2.0) for t in (full, half))
    assert abs(float(kl_half - kl_full)) < 2**-11 * float(kl_full)


def test_a_value_beyond_half_precision_is_refused_not_stored_as_inf(tmp_path):
    from pkt.methods.semalign.store import TargetWriter

    writer = TargetWriter(tmp_path, 2, {1: 4}, topk=2)
    part = {"teacher_rows": {1: np.full((2, 4), 7e4)}, "topk_values": np.ones((2, 2)),
            "topk_ids": np.zeros((2, 2)), "counts": [2], "digests": ["d"]}
    with pytest.raises(ValueError, match=r"teacher1.npy: a value of magnitude 7e\+04 does not fit float16"):
        writer.add(part)


def test_the_planned_disk_counts_rows_topk_and_maps_and_refuses_above_the_limit():
    """Per supervised token: D_T x 2 bytes per pair (float16) + top-k x (2 + 4); plus both maps D_S x D_T x 4."""
    from pkt.methods.semalign.targets import check_disk, planned_bytes

    plans = {"train": {"rows": 100}, "align": {"rows": 20}}
    assert planned_bytes(plans, 1, 4, 8, 2, "float16") == 120 * (8 * 2 + 2 * 6) + 2 * 4 * 8 * 4 == 3616
    assert planned_bytes(plans, 2, 4, 8, 2, "float32") == 120 * (2 * 8 * 4 + 2 * 8) + 256
    pairs = {"toy_mmlu": [{"student": 2}]}
    assert check_disk("toy", {"toy_mmlu": plans}, pairs, 4, 8, 2, "float16", max_gb=1.0) == (120, 3616)
    with pytest.raises(ValueError, match=r"pair toy would take 0\.0 GB \(120 response tokens.*semalign.targets_max_gb"):
        check_disk("toy", {"toy_mmlu": plans}, pairs, 4, 8, 2, "float16", max_gb=3e-6)
