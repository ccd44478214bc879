"""The ``kd`` and ``fitnet`` methods (pkt.methods.kd, pkt.methods.fitnet) and the unmapped teacher rows: known
answers, tiny models."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from tiny_llama import VOCAB, batches, tiny

from pkt.layers.importance import decoder_layers, predicting_positions
from pkt.layers.pairing import pair_layers
from pkt.methods import get_method
from pkt.methods.fitnet import hint_loss
from pkt.methods.kd import kd_term
from pkt.methods.semalign.bases import MAPS, map_matrix, topk_kl
from pkt.methods.semalign.store import Targets, write_targets
from pkt.methods.semalign.targets import compute_targets, layer_signals, trained_pairs


def write(folder: Path, teacher, student, pairs) -> Path:
    maps = {kind: map_matrix(kind, student.lm_head.weight, teacher.lm_head.weight) for kind in MAPS}
    folder.mkdir()
    write_targets(folder, compute_targets(teacher, batches(), pairs, "delta", topk=5),
                  {"pairs": pairs, "signal": "delta", "topk": 5}, maps=maps)
    return folder


@pytest.fixture()
def setup(tmp_path):
    """Teacher (4 x 24) and student (2 x 16); targets of the critical pair (4, 2) written to disk."""
    teacher, student = tiny(24, 4, 0), tiny(16, 2, 1)
    pairs = trained_pairs(pair_layers([1.0, 0.5, 3.0, 0.2], [1.0, 1.0]), "critical", interpolate=True)
    return teacher, student, write(tmp_path / "targets", teacher, student, pairs)


def inputs_of(i: int = 0) -> dict[str, torch.Tensor]:
    return {**batches()[i], "example_index": torch.arange(3 * i, 3 * i + 3)}


def forward(model, inputs: dict[str, torch.Tensor]):
    return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])


# ------------------------------------------------------------------------------------------------ kd --
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_kd_term_is_zero_exactly_when_the_student_matches_the_teacher(temperature: float):
    logits = torch.randn(7, VOCAB, generator=torch.Generator().manual_seed(1))
    ids = logits.topk(5, dim=-1).indices
    values = logits.gather(-1, ids)
    assert float(kd_term(logits, values, ids, temperature)) == pytest.approx(0.0, abs=1e-6)
    assert float(kd_term(logits, values + 3.0, ids, temperature)) == pytest.approx(0.0, abs=1e-6)  # shift-free
    other = values + torch.randn(values.shape, generator=torch.Generator().manual_seed(2))
    assert float(kd_term(logits, other, ids, temperature)) > 1e-3


def test_kd_gradient_step_moves_the_student_toward_the_teacher():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(6, VOCAB, generator=gen).requires_grad_()
    ids = torch.stack([torch.randperm(VOCAB, generator=gen)[:5] for _ in range(6)])
    values, t = 3 * torch.randn(6, 5, generator=gen), 2.0
    teacher_p = torch.softmax(values / t, dim=-1)

    def distance(x: torch.Tensor) -> float:  # mean total variation of the renormalised top-k distributions
        return float(0.5 * (torch.softmax(x.gather(-1, ids) / t, dim=-1) - teacher_p).abs().sum(-1).mean())

    before = kd_term(logits, values, ids, t)
    before.backward()
    with torch.no_grad():
        stepped = logits - 0.5 * logits.grad
        after = kd_term(stepped, values, ids, t)
    assert float(after) < float(before.detach()) - 1e-4
    assert distance(stepped) < distance(logits.detach()) - 1e-4
    outside = torch.ones_like(logits, dtype=torch.bool).scatter(-1, ids, False)
    assert float(logits.grad[outside].abs().max()) == 0.0  # only the teacher's top-k ids receive gradient


def test_kd_term_is_t_squared_times_the_topk_kl_of_the_hand_computed_distributions():
    gen = torch.Generator().manual_seed(4)
    logits, values = torch.randn(5, VOCAB, generator=gen), torch.randn(5, 4, generator=gen)
    ids = torch.stack([torch.randperm(VOCAB, generator=gen)[:4] for _ in range(5)])
    got = kd_term(logits, values, ids, 2.0)
    assert torch.allclose(got, 4 * topk_kl(logits, values, ids, temperature=2.0), atol=1e-6)
    p = torch.softmax(values / 2, dim=-1)
    q = torch.softmax(logits.gather(-1, ids) / 2, dim=-1)
    assert torch.allclose(got, 4 * (p * (p / q).log()).sum(-1).mean(), atol=1e-5)


def kd_method(folder: Path | None, **settings):
    base = {"r": 4, "alpha": 8, "dropout": 0.0, "kd_alpha": 0.3, "temperature": 2.0}
    return get_method("kd").from_dict({**base, **settings}, {} if folder is None else {"targets": folder})


def test_kd_method_end_to_end(setup):
    teacher, student, folder = setup
    inputs = inputs_of(1)
    prev = predicting_positions(inputs["labels"] != -100)
    with torch.no_grad():
        top = forward(teacher, inputs).logits[prev].topk(5, dim=-1)  # the teacher's own top-k, not the stored one
    method = kd_method(folder)
    assert method.supervised_weight == pytest.approx(0.7)
    model = method.init_adapter(student, None)
    model.train()
    out = forward(model, inputs)
    loss = method.aux_loss(model, inputs, out)
    expected = 0.3 * kd_term(out.logits[prev], top.values, top.indices, 2.0)
    assert torch.allclose(loss, expected, atol=1e-6) and float(loss.detach()) > 1e-4  # tiny random models: near-flat
    loss.backward()
    lora = [p for n, p in model.named_parameters() if "lora_" in n and p.grad is not None]
    assert lora and any(float(p.grad.abs().sum()) > 0 for p in lora)
    clone = kd_method(folder)
    twin = clone.init_adapter(copy.deepcopy(teacher), None)  # a student whose logits are the teacher's
    assert float(clone.aux_loss(twin, inputs, forward(twin, inputs))) == pytest.approx(0.0, abs=1e-6)
    assert kd_method(folder, kd_alpha=0.0).aux_loss(model, inputs, out) is None


def test_kd_settings_and_inputs_are_checked():
    for alpha in (-0.1, 1.5):
        with pytest.raises(ValueError, match="kd.alpha"):
            kd_method(None, kd_alpha=alpha)
    with pytest.raises(KeyError, match="teacher_targets"):
        kd_method(None).targets()


# -------------------------------------------------------------------------------------------- fitnet --
def test_hint_loss_known_answers():
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(6, 8, generator=gen), torch.randn(6, 8, generator=gen)
    scale = torch.rand(6, 1, generator=gen) + 0.1
    assert float(hint_loss(a * scale, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(hint_loss(-a, a)) == pytest.approx(2.0, abs=1e-6)
    assert torch.allclose(hint_loss(a, b, "mse"), ((a - b) ** 2).mean(), atol=1e-6)
    target = b.clone().requires_grad_()
    hint_loss(a.clone().requires_grad_(), target, "mse").backward()
    assert target.grad is None  # the target is a fixed goal
    with pytest.raises(ValueError, match="fitnet.loss"):
        hint_loss(a, b, "l1")
    with pytest.raises(ValueError, match="one shape"):
        hint_loss(a, b[:, :7])
    with pytest.raises(ValueError, match="0 rows"):
        hint_loss(a[:0], b[:0])
    with pytest.raises(ValueError, match="fitnet.loss"):
        get_method("fitnet").from_dict({"loss": "l1"})


def fitnet_on(student, folder: Path, **settings):
    method = get_method("fitnet").from_dict({"r": 4, "alpha": 8, "dropout": 0.0, **settings}, {"targets": folder})
    return method, method.init_adapter(student, None)


def test_fitnet_projectors_and_lora_of_the_paired_layer_alone_learn(setup):
    _, student, folder = setup
    method, model = fitnet_on(student, folder, ce_weight=0.25)
    assert method.supervised_weight == 0.25 and method.align_phase() is None
    assert method.layers == [1] and Targets(folder).layers == [2]
    assert set(method.projectors) == {"1"} and method.projectors["1"].weight.shape == (24, 16)
    model.train()
    inputs = inputs_of(0)
    method.aux_loss(model, inputs, forward(model, inputs)).backward()
    named = dict(model.named_parameters())
    projectors = {n: p for n, p in named.items() if "fitnet_projectors" in n}
    assert projectors and all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in projectors.values())
    paired = [p for n, p in named.items() if ".layers.1." in n and "lora_" in n]
    assert paired and any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in paired)
    other = {n: p for n, p in named.items() if ".layers.0." in n}
    assert other and not any(p.requires_grad or p.grad is not None for p in other.values())
    assert decoder_layers(model)[0].self_attn.v_proj.weight.grad is None


@pytest.mark.parametrize("loss", ["cosine", "mse"])
def test_fitnet_learns_the_map(setup, loss: str):
    _, student, folder = setup
    method, model = fitnet_on(student, folder, loss=loss)
    for name, p in model.named_parameters():
        p.requires_grad_("fitnet_projectors" in name)  # LoRA frozen: only the projector learns
    inputs = inputs_of(1)
    with torch.no_grad():
        out = forward(model, inputs)  # the hooks keep the (now fixed) student signal
    optimizer = torch.optim.Adam(method.projectors.parameters(), lr=0.05)
    losses = []
    for _ in range(50):
        value = method.aux_loss(model, inputs, out)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(float(value))
    assert losses[-1] < 0.5 * losses[0], losses


def test_fitnet_needs_the_unmapped_teacher_rows(setup):
    _, student, folder = setup
    (folder / "teacher2.npy").unlink()
    with pytest.raises(FileNotFoundError, match="teacher_targets"):
        fitnet_on(student, folder)


# ------------------------------------------------------------------------------------------- targets --
def test_teacher_rows_read_back_equal_the_mixed_teacher_signal(tmp_path):
    teacher, student = tiny(24, 3, 0), tiny(16, 2, 1)
    pairs = trained_pairs(pair_layers([1.0, 0.5, 3.0], [1.0, 1.0]), "all", interpolate=True)  # 3 -> 2: mixed
    assert any(len(p["sources"]) == 2 for p in pairs)
    targets = Targets(write(tmp_path / "targets", teacher, student, pairs))
    for p in pairs:
        k = p["student"]
        assert targets.teacher_layer_width(k) == 24
        for i, batch in enumerate(batches()):
            signals, _ = layer_signals(teacher, batch, [t - 1 for t, _ in p["sources"]], "delta")
            prev = predicting_positions(batch["labels"] != -100)  # the positions predicting response tokens
            mixed = sum(w * signals[t - 1] for t, w in p["sources"])
            stored = targets.teacher_layer(k, [3 * i + b for b in range(3)], prev.sum(1).tolist())
            for b in range(3):
                assert torch.equal(stored[b], mixed[b][prev[b]].half().float())  # fp16 on disk
    (tmp_path / "targets" / f"teacher{pairs[0]['student']}.npy").unlink()
    with pytest.raises(FileNotFoundError, match="teacher_targets"):
        Targets(tmp_path / "targets")


def test_kd_top_k_ids_stay_inside_the_shared_vocabulary():
    """A teacher that appended a token (WizardCoder's [PAD], id 32,000 of 32,001), here one with a large logit:
    the stored top-k must come from the ids the student has."""
    teacher = tiny(24, 4, 0, vocab=51)
    with torch.no_grad():
        teacher.lm_head.weight[50] = 50 * teacher.lm_head.weight[:50].mean(0) + 1.0
    pairs = [{"student": 1, "sources": [(2, 1.0)]}]
    everything = compute_targets(teacher, batches(3), pairs, "delta", topk=5)
    assert (everything["topk_ids"][:, 0] == 50).mean() > 0.5  # the appended id mostly leads, for the student
    shared = compute_targets(teacher, batches(3), pairs, "delta", topk=5, vocab=50)
    assert shared["topk_ids"].max() < 50
    batch = batches(3)[0]
    mask = batch["labels"] != -100
    logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = logits[predicting_positions(mask)][:, :50].topk(5, dim=-1)
    n = int(mask.sum())
    assert torch.allclose(torch.from_numpy(shared["topk_values"][:n]), expected.values, atol=1e-5)


def test_a_resume_without_the_projectors_is_refused_and_with_them_restores_them(setup, tmp_path):
    from types import SimpleNamespace

    _, student, folder = setup
    method, _ = fitnet_on(copy.deepcopy(student), folder)
    (keep,) = method.callbacks()
    args, checkpoint = SimpleNamespace(output_dir=str(tmp_path)), tmp_path / "checkpoint-10"
    checkpoint.mkdir()
    keep.on_train_begin(args, SimpleNamespace(global_step=0), None)  # a fresh run needs nothing
    with pytest.raises(FileNotFoundError, match="no projectors"):
        keep.on_train_begin(args, SimpleNamespace(global_step=10), None)
    with torch.no_grad():
        method.projectors["1"].weight.fill_(0.5)
    keep.on_save(args, SimpleNamespace(global_step=10), None)
    with torch.no_grad():
        method.projectors["1"].weight.zero_()
    keep.on_train_begin(args, SimpleNamespace(global_step=10), None)
    assert torch.equal(method.projectors["1"].weight, torch.full((24, 16), 0.5))
