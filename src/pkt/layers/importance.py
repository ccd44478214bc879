"""Per-layer importance by gradient x activation (SemAlign, Section 4.1).

SemAlign scores every teacher decoder layer with Captum's ``LayerGradientXActivation`` under the
supervised task loss: for the output A_l of decoder layer l, the attribution is A_l * dL/dA_l
(element-wise), reduced over tokens and channels to one scalar. The paper does not say how it is
reduced, so ``aggregation`` is configurable ("sum", "sum_abs", "mean_abs").

This module computes the same quantity without Captum and for all layers at once: forward hooks keep
every layer's output, and a single ``torch.autograd.grad(loss, outputs)`` per batch returns every
dL/dA_l. Asking autograd for the activations only (rather than ``loss.backward()``) means no
parameter ``.grad`` is written and the weight-gradient kernels are skipped, so the cost stays close to
one plain forward + backward. ``tests/test_importance.py`` checks agreement with Captum layer by layer.

The loss is the model's own causal-LM loss with ``labels`` (-100 on prompt and padding tokens): the
token-mean cross-entropy over the response tokens of the whole set. Each batch's attribution is taken
for its summed token loss and the totals are divided by the set's token count, so every token weighs the
same and the scores do not depend on ``batch_size``. Padding positions (``attention_mask == 0``) are
excluded from every aggregation.

What A_l is, ``target`` (both use the same gradient g_l = dL/dh_l at the layer output h_l):

- ``"output"`` (default; Captum's ``LayerGradientXActivation`` on the decoder layer): A_l = h_l, the
  layer's output, i.e. the residual stream after the layer.
- ``"delta"``: A_l = h_l - h_{l-1}, the layer's own residual contribution (SemAlign's "sublayer output
  before residual addition", taken per decoder layer; h_0 = the first layer's input, the embeddings).
  Since h_l = h_{l-1} + delta_l, dL/d(delta_l) = dL/dh_l = g_l, so this is gradient x activation of
  the contribution itself. h_{l-1} is taken from each layer's input (forward pre-hooks), so the cost is
  still one forward and one backward pass per batch.

Why both: the residual-stream output of layer l contains everything written by layers 1..l (and the
embeddings), so "output" scores are inherited upwards -- a layer that changes nothing (zeroed
o_proj/down_proj) gets exactly the score of the layer below it. And because every sublayer and the
final RMSNorm see a normalised input, the loss is invariant to the residual's scale: "output" scores
do not grow when a layer's output weights are scaled up, and the signed "sum" of the *last* layer is
~0 (Euler's theorem on the final RMSNorm). "delta" removes the inheritance: a layer that changes
nothing scores exactly 0, and a layer whose contribution dominates the residual ranks first (the
tests check both). Use "output" to reproduce Captum / the paper's tool literally; use "delta" when the
question is which layer's own computation matters. With either, "sum_abs" is the sensible default for
choosing a critical layer: signed sums cancel (for "delta" in a model with one residual branch per
layer they sum exactly to minus the embedding's E * dL/dE, a scale identity; see the tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

AGGREGATIONS = ("sum", "sum_abs", "mean_abs")
TARGETS = ("output", "delta")
IGNORE_INDEX = -100
BATCH_KEYS = ("input_ids", "attention_mask", "labels")


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a causal LM (``model.get_decoder().layers`` or ``model.model.layers``)."""
    get_decoder = getattr(model, "get_decoder", None)
    if callable(get_decoder):
        decoder = get_decoder()
        layers = getattr(decoder, "layers", None)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if isinstance(layers, nn.ModuleList) and len(layers) > 0:
        return layers
    name = type(model).__name__
    raise ValueError(f"cannot find decoder layers on {name} (no get_decoder().layers or model.layers)")


def hidden_state(output: Any) -> torch.Tensor:
    """The hidden state a decoder layer returns: a tensor (transformers 5) or the first tuple item."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    kind = type(output).__name__
    raise TypeError(f"decoder layer returned {kind}, expected a tensor or a tuple of tensors")


def layer_input(args: tuple, kwargs: dict) -> torch.Tensor:
    """The hidden state passed to a decoder layer: its first positional argument or ``hidden_states``."""
    value = args[0] if args else kwargs.get("hidden_states")
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"decoder layer input is {type(value).__name__}, expected the hidden-state tensor")
    return value


def predicting_positions(mask):
    """The positions whose logits predict the supervised tokens of ``mask`` [B, T] (one to the left): where
    a model's logits are compared with a teacher's or a target's for those tokens."""
    prev = mask.new_zeros(mask.shape)
    prev[:, :-1] = mask[:, 1:]
    return prev


def check_batch(batch: Mapping[str, torch.Tensor], index: int = 0) -> None:
    """Raise ValueError unless ``batch`` has ``input_ids`` and ``labels`` with some supervised token.

    A causal LM predicts token t+1 from position t, so only ``labels[:, 1:]`` can ever be scored; a batch
    whose labels there are all -100 has an undefined (NaN) loss and therefore no attribution.
    """
    for key in ("input_ids", "labels"):
        if key not in batch:
            raise ValueError(
                f"batch {index} has no '{key}': layer importance needs a supervised loss on labels"
            )
    labels = batch["labels"]
    if labels.shape != batch["input_ids"].shape:
        shapes = f"{tuple(labels.shape)} != input_ids {tuple(batch['input_ids'].shape)}"
        raise ValueError(f"batch {index}: labels shape {shapes}")
    if "attention_mask" in batch and batch["attention_mask"].shape != labels.shape:
        raise ValueError(f"batch {index}: attention_mask shape differs from input_ids")
    if not bool((labels[:, 1:] != IGNORE_INDEX).any()):
        raise ValueError(
            f"batch {index}: all labels are -100 (no response tokens to score), the loss is undefined"
        )


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _ensure_grad_path(model: nn.Module) -> torch.utils.hooks.RemovableHandle | None:
    """Make the embedding output require grad when the model is frozen, so dL/dA_l still exists."""
    get_emb = getattr(model, "get_input_embeddings", None)
    emb = get_emb() if callable(get_emb) else None
    if emb is None:
        return None

    def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if torch.is_tensor(output) and not output.requires_grad:
            return output.detach().requires_grad_(True)
        return None

    return emb.register_forward_hook(hook)


def aggregate(attribution: torch.Tensor, mask: torch.Tensor, aggregation: str) -> float:
    """Reduce one layer's [B, T, D] attribution over real (mask=1) tokens and channels to a float.

    For "mean_abs" this returns the *sum* of absolute values; the caller divides by the element count
    across all batches, so the mean is over every real token x channel of the whole set.
    """
    keep = mask.to(device=attribution.device, dtype=torch.bool)
    values = attribution[keep].double()
    if aggregation == "sum":
        return float(values.sum())
    return float(values.abs().sum())


def scored_tokens(labels: torch.Tensor) -> int:
    """Tokens a causal LM is scored on: labels after the first position that are not -100."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def batch_attributions(
    model: nn.Module, layers: nn.ModuleList, batch: Mapping[str, torch.Tensor], target: str = "output"
) -> list[torch.Tensor]:
    """A_l * dL/dh_l ([B, T, D]) for every decoder layer, from one forward and one backward pass.

    L is the model's loss: the mean over the batch's scored tokens.

    A_l is the layer output h_l (``target="output"``) or its residual contribution h_l - h_{l-1}
    (``target="delta"``, h_{l-1} = the layer's input); the gradient is always taken at h_l.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    captured: list[torch.Tensor | None] = [None] * len(layers)
    inputs: list[torch.Tensor | None] = [None] * len(layers)

    def make_hook(i: int):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            captured[i] = hidden_state(output)

        return hook

    def make_pre_hook(i: int):
        def pre_hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
            inputs[i] = layer_input(args, kwargs).detach()

        return pre_hook

    handles = [layer.register_forward_hook(make_hook(i)) for i, layer in enumerate(layers)]
    if target == "delta":
        handles += [
            layer.register_forward_pre_hook(make_pre_hook(i), with_kwargs=True) for i, layer in enumerate(layers)
        ]
    try:
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
            use_cache=False,
        )
    finally:
        for h in handles:
            h.remove()
    missing = [i for i, a in enumerate(captured) if a is None]
    if target == "delta":
        missing += [i for i, a in enumerate(inputs) if a is None and i not in missing]
    if missing:
        raise RuntimeError(f"decoder layers {sorted(missing)} did not run in the forward pass")
    acts = [a for a in captured if a is not None]
    loss = out.loss
    if loss is None or not torch.isfinite(loss):
        raise ValueError(f"the causal-LM loss is {loss}; check the labels")
    grads = torch.autograd.grad(loss, acts, allow_unused=True)
    values = [a.detach() for a in acts]
    if target == "delta":
        values = [v - x for v, x in zip(values, inputs)]
    return [v * (g if g is not None else torch.zeros_like(v)) for v, g in zip(values, grads)]


def layer_importance(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    aggregation: str = "sum_abs",
    disable_progress: bool = False,
    target: str = "output",
) -> list[float]:
    """One gradient x activation score per decoder layer (index 0 = layer 1), summed over ``batches``.

    L is the mean loss over every scored token of every batch: each batch contributes its summed token
    loss and the total is divided by the token count, so the scores do not depend on how the examples
    are split into batches (a short last batch weighs its tokens, not a whole batch).

    Each batch is a dict of [B, T] LongTensors ``input_ids``, ``labels`` (-100 = not scored) and
    optionally ``attention_mask`` (default: all ones). The model runs in eval mode (no dropout) and is
    restored to its previous mode afterwards; no parameter ``.grad`` is touched.

    aggregation: "sum" (signed total), "sum_abs" (total of |A * dL/dA|) or "mean_abs" (mean of
    |A * dL/dA| over every real token x channel across all batches).
    target: "output" (A_l = h_l, Captum's definition) or "delta" (A_l = h_l - h_{l-1}, the layer's own
    residual contribution); dL/dA is dL/dh_l for both. See the module docstring for which to use.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    layers = decoder_layers(model)
    device = _model_device(model)
    totals = [0.0] * len(layers)
    n_elements = 0
    n_tokens = 0
    n_batches = 0
    was_training = model.training
    model.eval()
    emb_handle = _ensure_grad_path(model)
    try:
        with torch.enable_grad():
            for index, raw in enumerate(tqdm(batches, desc="layer importance", disable=disable_progress)):
                check_batch(raw, index)
                batch = {k: v.to(device) for k, v in raw.items() if k in BATCH_KEYS}
                batch.setdefault("attention_mask", torch.ones_like(batch["input_ids"]))
                attributions = batch_attributions(model, layers, batch, target)
                mask = batch["attention_mask"]
                # The batch's loss is a mean over its scored tokens; weighted by their count it is their
                # sum, so every token weighs the same however the examples are batched.
                weight = scored_tokens(batch["labels"])
                for i, attr in enumerate(attributions):
                    totals[i] += weight * aggregate(attr, mask, aggregation)
                n_elements += int(mask.bool().sum()) * attributions[0].shape[-1]
                n_tokens += weight
                n_batches += 1
    finally:
        if emb_handle is not None:
            emb_handle.remove()
        model.train(was_training)
    if n_batches == 0:
        raise ValueError("no batches given: layer importance needs at least one supervised batch")
    totals = [t / n_tokens for t in totals]  # L = the token-mean loss over the whole set, however batched
    if aggregation == "mean_abs":
        totals = [t / n_elements for t in totals]
    bad = [i + 1 for i, t in enumerate(totals) if not math.isfinite(t)]
    if bad:
        raise ValueError(f"non-finite importance for layers {bad}")
    return [float(t) for t in totals]
