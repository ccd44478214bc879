"""Known answers for ``pkt.importance`` (gradient x activation per decoder layer, SemAlign Section 4.1)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pkt.importance import AGGREGATIONS, decoder_layers, layer_importance

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

    batches = [make_batch(seed=1), make_batch(seed=2)]

    def loss_fn(input_ids, attention_mask, labels):
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, use_cache=False)
        return out.loss.reshape(1)

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


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_right_padding_does_not_change_scores(model, aggregation):
    plain = layer_importance(model, [make_batch()], aggregation, disable_progress=True)
    padded = layer_importance(model, [make_batch(pad=5)], aggregation, disable_progress=True)
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


def test_leaves_model_untouched(model):
    model.train()
    layer_importance(model, [make_batch()], disable_progress=True)
    assert model.training
    model.eval()
    assert all(p.grad is None for p in model.parameters())
    assert all(len(layer._forward_hooks) == 0 for layer in model.model.layers)
    assert len(model.get_input_embeddings()._forward_hooks) == 0


def test_frozen_model_gives_same_scores():
    model = tiny_llama(seed=6)
    expected = layer_importance(model, [make_batch()], disable_progress=True)
    for p in model.parameters():
        p.requires_grad_(False)
    assert layer_importance(model, [make_batch()], disable_progress=True) == pytest.approx(expected, rel=1e-6)


def test_batches_sum(model):
    a, b = make_batch(seed=7), make_batch(seed=8)
    both = layer_importance(model, [a, b], "sum_abs", disable_progress=True)
    sa, sb = (layer_importance(model, [m], "sum_abs", disable_progress=True) for m in (a, b))
    single = [x + y for x, y in zip(sa, sb)]
    assert both == pytest.approx(single, rel=1e-9)


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


def test_hidden_state_from_tensor_or_tuple():
    from pkt.importance import _hidden

    t = torch.zeros(1, 2, 3)
    assert _hidden(t) is t
    assert _hidden((t, None)) is t
    with pytest.raises(TypeError, match="decoder layer returned"):
        _hidden(None)
