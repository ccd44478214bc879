"""Known answers for ``pkt.layers.importance`` (gradient x activation per decoder layer, SemAlign Section 4.1)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pkt.layers.importance import (
    AGGREGATIONS,
    TARGETS,
    batch_attributions,
    decoder_layers,
    layer_importance,
    scored_tokens,
)

VOCAB = 100
N_LAYERS = 3


def tiny_llama(seed: int = 0, n_layers: int = N_LAYERS, rms_norm_eps: float = 1e-6) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        rms_norm_eps=rms_norm_eps,
        pad_token_id=0,
    )
    return LlamaForCausalLM(cfg).eval()


def make_batch(seed: int = 1, batch: int = 3, length: int = 12, prompt: int = 4, pad: int = 0) -> dict:
    """Random tokens; loss on positions >= ``prompt``; the last row is right-padded by 3 tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[-1, length - 3 :] = 0
    labels = ids.clone()
    labels[:, :prompt] = -100
    labels[mask == 0] = -100
    ids[mask == 0] = 0
    if pad:
        ids = torch.cat([ids, torch.zeros(batch, pad, dtype=ids.dtype)], dim=1)
        mask = torch.cat([mask, torch.zeros(batch, pad, dtype=mask.dtype)], dim=1)
        labels = torch.cat([labels, torch.full((batch, pad), -100, dtype=labels.dtype)], dim=1)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def reduce(attr: torch.Tensor, mask: torch.Tensor, aggregation: str) -> float:
    values = attr.detach()[mask.bool()].double()
    if aggregation == "sum":
        return float(values.sum())
    if aggregation == "sum_abs":
        return float(values.abs().sum())
    return float(values.abs().mean())


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    return tiny_llama()


def test_decoder_layers_found(model):
    assert decoder_layers(model) is model.model.layers
    with pytest.raises(ValueError, match="decoder layers"):
        decoder_layers(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_matches_captum_layer_gradient_x_activation(model, aggregation):
    from captum.attr import LayerGradientXActivation

    batches = [make_batch(seed=1), make_batch(seed=2, batch=2)]
    total = sum(scored_tokens(b["labels"]) for b in batches)

    def loss_fn(input_ids, attention_mask, labels):
        """The set's token-mean loss, restricted to this batch: its summed token loss / all scored tokens."""
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, use_cache=False)
        return (out.loss * scored_tokens(labels) / total).reshape(1)

    expected = []
    for layer in model.model.layers:
        attrs = [
            LayerGradientXActivation(loss_fn, layer).attribute(
                b["input_ids"], additional_forward_args=(b["attention_mask"], b["labels"])
            )
            for b in batches
        ]
        attrs = [a[0] if isinstance(a, tuple) else a for a in attrs]
        if aggregation == "mean_abs":
            values = torch.cat([a[b["attention_mask"].bool()].reshape(-1) for a, b in zip(attrs, batches)])
            expected.append(float(values.detach().double().abs().mean()))
        else:
            expected.append(sum(reduce(a, b["attention_mask"], aggregation) for a, b in zip(attrs, batches)))
    ours = layer_importance(model, batches, aggregation, disable_progress=True)
    assert all(isinstance(s, float) for s in ours)
    assert len(ours) == N_LAYERS
    assert torch.allclose(torch.tensor(ours), torch.tensor(expected), rtol=1e-4, atol=1e-9), (ours, expected)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_right_padding_does_not_change_scores(model, aggregation, target):
    plain = layer_importance(model, [make_batch()], aggregation, disable_progress=True, target=target)
    padded = layer_importance(model, [make_batch(pad=5)], aggregation, disable_progress=True, target=target)
    assert torch.allclose(torch.tensor(plain), torch.tensor(padded), rtol=1e-4, atol=1e-8), (plain, padded)


def _make_identity(model: LlamaForCausalLM, index: int) -> None:
    """Zero both residual branches of decoder layer ``index`` (0-based): its output equals its input."""
    layer = model.model.layers[index]
    with torch.no_grad():
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_identity_layer_inherits_the_score_below(aggregation):
    """A decoder layer whose residual branches are zeroed (a real weight change) passes A and dL/dA
    through unchanged, so its score equals that of the layer below it exactly; the others differ."""
    model = tiny_llama(seed=3, n_layers=4)
    _make_identity(model, 2)
    scores = layer_importance(model, [make_batch()], aggregation, disable_progress=True)
    assert scores[2] == pytest.approx(scores[1], rel=1e-6)
    assert scores[1] != pytest.approx(scores[0], rel=1e-3)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_all_identity_model_scores_equal_embedding_attribution(aggregation):
    """With every layer an identity, each layer's output is the embedding output E; the score must be
    E * dL/dE, computed here by an independent route (``inputs_embeds`` as the differentiated leaf)."""
    model = tiny_llama(seed=4)
    for i in range(N_LAYERS):
        _make_identity(model, i)
    batch = make_batch()
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
    loss = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    (grad,) = torch.autograd.grad(loss, embeds)
    expected = reduce(embeds.detach() * grad, batch["attention_mask"], aggregation)
    scores = layer_importance(model, [batch], aggregation, disable_progress=True)
    assert scores == pytest.approx([expected] * N_LAYERS, rel=1e-5)


def test_last_layer_signed_sum_vanishes():
    """The final RMSNorm makes the loss invariant to rescaling the last layer's output, so by Euler's
    theorem sum(A_L * dL/dA_L) = 0 (up to the norm's eps), while the earlier layers' sums are not 0.
    Consequence: with aggregation="sum" the last layer never carries importance."""
    model = tiny_llama(seed=5, rms_norm_eps=1e-12)
    signed = layer_importance(model, [make_batch()], "sum", disable_progress=True)
    absolute = layer_importance(model, [make_batch()], "sum_abs", disable_progress=True)
    assert abs(signed[-1]) < 1e-4 * absolute[-1]
    assert abs(signed[0]) > 1e-3 * absolute[0]


@pytest.mark.parametrize("target", TARGETS)
def test_leaves_model_untouched(model, target):
    model.train()
    layer_importance(model, [make_batch()], disable_progress=True, target=target)
    assert model.training
    model.eval()
    assert all(p.grad is None for p in model.parameters())
    assert all(len(layer._forward_hooks) == 0 for layer in model.model.layers)
    assert all(len(layer._forward_pre_hooks) == 0 for layer in model.model.layers)
    assert len(model.get_input_embeddings()._forward_hooks) == 0


@pytest.mark.parametrize("target", TARGETS)
def test_frozen_model_gives_same_scores(target):
    model = tiny_llama(seed=6)
    expected = layer_importance(model, [make_batch()], disable_progress=True, target=target)
    for p in model.parameters():
        p.requires_grad_(False)
    frozen = layer_importance(model, [make_batch()], disable_progress=True, target=target)
    assert frozen == pytest.approx(expected, rel=1e-6)


def test_batches_weigh_their_tokens(model):
    """Two batches score as the token-weighted mean of their single-batch scores, not their sum."""
    a, b = make_batch(seed=7), make_batch(seed=8, batch=1)
    na, nb = scored_tokens(a["labels"]), scored_tokens(b["labels"])
    both = layer_importance(model, [a, b], "sum_abs", disable_progress=True)
    sa, sb = (layer_importance(model, [m], "sum_abs", disable_progress=True) for m in (a, b))
    assert both == pytest.approx([(na * x + nb * y) / (na + nb) for x, y in zip(sa, sb)], rel=1e-9)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_batch_size_does_not_change_scores(model, aggregation, target):
    """The same six examples in one batch, in 4 + 2, or one by one: the same scores (a short last batch
    used to count like a full one)."""
    rows = make_batch(seed=5, batch=6)
    split = {size: [{k: v[i : i + size] for k, v in rows.items()} for i in range(0, 6, size)] for size in (6, 4, 1)}
    scores = {size: layer_importance(model, batches, aggregation, disable_progress=True, target=target)
              for size, batches in split.items()}
    for size in (4, 1):
        assert scores[size] == pytest.approx(scores[6], rel=1e-5, abs=1e-7), size  # abs: signed sums near 0


def test_bad_inputs_raise(model):
    batch = make_batch()
    with pytest.raises(ValueError, match="no 'labels'"):
        layer_importance(model, [{k: v for k, v in batch.items() if k != "labels"}], disable_progress=True)
    with pytest.raises(ValueError, match="all labels are -100"):
        unlabelled = {**batch, "labels": torch.full_like(batch["labels"], -100)}
        layer_importance(model, [unlabelled], disable_progress=True)
    with pytest.raises(ValueError, match="no batches"):
        layer_importance(model, [], disable_progress=True)
    with pytest.raises(ValueError, match="aggregation"):
        layer_importance(model, [batch], aggregation="max", disable_progress=True)


@pytest.mark.parametrize("bad", ["input", "Delta", "", None])
def test_invalid_target_raises(model, bad):
    batch = make_batch()
    with pytest.raises(ValueError, match=r"target must be one of \('output', 'delta'\)"):
        layer_importance(model, [batch], disable_progress=True, target=bad)
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    with pytest.raises(ValueError, match="target must be one of"):
        batch_attributions(model, model.model.layers, batch, target=bad)


def test_hidden_state_from_tensor_or_tuple():
    from pkt.layers.importance import hidden_state

    t = torch.zeros(1, 2, 3)
    assert hidden_state(t) is t
    assert hidden_state((t, None)) is t
    with pytest.raises(TypeError, match="decoder layer returned"):
        hidden_state(None)


# --- target="delta": A_l = h_l - h_{l-1}, the layer's own residual contribution -------------------------


def _scale_output_weights(model: LlamaForCausalLM, index: int, factor: float) -> None:
    """Multiply both residual-branch output projections of decoder layer ``index`` by ``factor``: the
    layer's contribution h_l - h_{l-1} = attn + mlp becomes ``factor`` times larger (a real weight change;
    the MLP then also sees the larger attention output, so it is not an exact rescaling of the old delta)."""
    layer = model.model.layers[index]
    with torch.no_grad():
        layer.self_attn.o_proj.weight.mul_(factor)
        layer.mlp.down_proj.weight.mul_(factor)


SCALED_LAYERS = 4
SCALE = 50.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delta_ranks_the_scaled_up_layer_first(seed):
    """Acceptance test: in a 4-layer tiny Llama whose layer j has o_proj and down_proj multiplied by 50,
    target="delta" with "sum_abs" ranks layer j first, for every j (unscaled, the four delta scores are
    within 30% of each other and their argmax is 2, 1, 3 for seeds 0, 1, 2, so j really moves it)."""
    for j in range(SCALED_LAYERS):
        model = tiny_llama(seed=seed, n_layers=SCALED_LAYERS)
        _scale_output_weights(model, j, SCALE)
        scores = layer_importance(model, [make_batch()], "sum_abs", disable_progress=True, target="delta")
        assert max(range(SCALED_LAYERS), key=scores.__getitem__) == j, (seed, j, scores)
        assert all(s > 0 for s in scores)


def test_output_target_does_not_rank_the_scaled_up_layer_reliably():
    """Why "delta" exists: with target="output" the same scaled-up layer is *not* reliably ranked first,
    because later outputs inherit its residual and the final RMSNorm makes A * dL/dA scale-invariant."""
    hits, cases = 0, 0
    for seed in (0, 1, 2):
        for j in range(SCALED_LAYERS):
            model = tiny_llama(seed=seed, n_layers=SCALED_LAYERS)
            _scale_output_weights(model, j, SCALE)
            scores = layer_importance(model, [make_batch()], "sum_abs", disable_progress=True, target="output")
            hits += max(range(SCALED_LAYERS), key=scores.__getitem__) == j
            cases += 1
    assert hits < cases


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_delta_of_identity_layer_is_exactly_zero(aggregation):
    """A layer whose o_proj/down_proj are zeroed returns its input unchanged: its delta is 0, so its
    score is exactly 0 (the "output" target instead copies the layer below); the others are not 0."""
    model = tiny_llama(seed=3, n_layers=4)
    _make_identity(model, 2)
    scores = layer_importance(model, [make_batch()], aggregation, disable_progress=True, target="delta")
    assert scores[2] == 0.0
    assert all(abs(s) > 0 for i, s in enumerate(scores) if i != 2)


def test_delta_sum_is_derivative_of_loss_wrt_scaling_the_contribution():
    """Exact identity: sum(delta_l * dL/dh_l) = dL/d eps_l at eps = 0, where layer l's output is replaced
    by h_{l-1} + (1 + eps_l) (h_l - h_{l-1}). Checked against autograd w.r.t. the eps vector, computed
    through separate forward hooks."""
    model = tiny_llama(seed=9, n_layers=4)
    batch = make_batch()
    eps = torch.zeros(4, requires_grad=True)

    def make_hook(i: int):
        def hook(_module, args, kwargs, output):
            x = args[0] if args else kwargs["hidden_states"]
            return x + (1 + eps[i]) * (output - x)

        return hook

    layers = model.model.layers
    handles = [layer.register_forward_hook(make_hook(i), with_kwargs=True) for i, layer in enumerate(layers)]
    try:
        loss = model(**batch, use_cache=False).loss
    finally:
        for h in handles:
            h.remove()
    (expected,) = torch.autograd.grad(loss, eps)
    scores = layer_importance(model, [batch], "sum", disable_progress=True, target="delta")
    ours = torch.tensor(scores, dtype=torch.float64)
    assert torch.allclose(ours, expected.double(), rtol=1e-5, atol=1e-9), (scores, expected)


@pytest.mark.parametrize("branch", ["attention", "mlp"])
def test_delta_sums_and_embedding_attribution_cancel(branch):
    """Exact identity (scale invariance): when each decoder layer has one residual branch, its branch
    reads RMSNorm(h_{l-1}) and so is invariant to h_{l-1}'s scale; scaling the embeddings E and every
    delta_l by the same c then scales every h_l by c, and the final RMSNorm leaves the loss unchanged.
    Differentiating at c = 1:  sum(E * dL/dE) + sum_l sum(delta_l * dL/dh_l) = 0  (up to the norms' eps).
    dL/dE is computed independently, with ``inputs_embeds`` as the differentiated leaf.
    (With both branches per layer the MLP reads h_{l-1} + attn, which is not scaled by c, so the
    layer-level identity does not hold exactly.)"""
    model = tiny_llama(seed=9, n_layers=4, rms_norm_eps=1e-12)
    for layer in model.model.layers:
        with torch.no_grad():
            (layer.mlp.down_proj if branch == "attention" else layer.self_attn.o_proj).weight.zero_()
    batch = make_batch()
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
    loss = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    (grad,) = torch.autograd.grad(loss, embeds)
    embedding = reduce(embeds.detach() * grad, batch["attention_mask"], "sum")
    deltas = layer_importance(model, [batch], "sum", disable_progress=True, target="delta")
    assert max(abs(d) for d in deltas) > 1e-4  # the terms are not trivially 0
    assert torch.allclose(torch.tensor(sum(deltas)), torch.tensor(-embedding), rtol=1e-4, atol=1e-7), (
        deltas,
        embedding,
    )
