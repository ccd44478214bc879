"""Seeking's step 1: the sensitivity S(W) = sum over seed examples of |W * dL/dW| of every teacher weight.

One example per backward pass (the absolute value is taken per example, then summed). A per-parameter hook
folds each gradient into fp32 sums as soon as it is accumulated and frees it, so memory stays near the
weights plus the sums, whatever the model's dtype; the sums go to the host when a large teacher leaves the
GPU no room for them (:func:`accumulator_device`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm


def accumulator_device(n_params: int, device: torch.device, free_bytes: int | None = None) -> torch.device:
    """Where the fp32 sums of |W * grad| live: beside the weights, or on the host when they would take more than
    60% of the GPU's free memory. A 13B teacher on one 80 GB GPU: 26 GB of bf16 weights, and 52 GB of fp32 sums
    that would leave no room for activations; on the host they cost one fp32 copy per parameter per example."""
    if device.type != "cuda":
        return device
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    return device if 4 * n_params < 0.6 * free_bytes else torch.device("cpu")


def sensitivity(model: nn.Module, examples: Iterable[Mapping[str, torch.Tensor]], disable_progress: bool = False
                ) -> tuple[dict[str, torch.Tensor], int]:
    """S(W) = sum over examples of |W * dL/dW| for every parameter (fp32), and the number of examples.

    Each example is one sequence (a dict of [1, T] ``input_ids``, ``labels`` with -100 on the prompt,
    optional ``attention_mask``); L is the model's token-mean loss on its response tokens. The model runs
    in eval mode; parameters get no ``.grad`` afterwards and their ``requires_grad`` is restored. The sums
    live where :func:`accumulator_device` says (on the host for a 13B teacher on an 80 GB GPU).
    """
    params = dict(model.named_parameters())
    device = next(iter(params.values())).device
    where = accumulator_device(sum(p.numel() for p in params.values()), device)
    acc = {name: torch.zeros(p.shape, dtype=torch.float32, device=where) for name, p in params.items()}
    was_training, needs_grad = model.training, {name: p.requires_grad for name, p in params.items()}

    def accumulate(name: str):
        def hook(p: torch.Tensor) -> None:
            acc[name].add_((p.detach().float() * p.grad.float()).abs_().to(where))
            p.grad = None  # free it now: memory stays near weights + one fp32 accumulator

        return hook

    handles = []
    for name, p in params.items():
        p.requires_grad_(True)
        handles.append(p.register_post_accumulate_grad_hook(accumulate(name)))
    model.eval()
    count = 0
    try:
        for example in tqdm(examples, desc="sensitivity", disable=disable_progress):
            if example["input_ids"].shape[0] != 1:
                raise ValueError("sensitivity takes one example per pass (abs per example, then summed)")
            batch = {k: v.to(device) for k, v in example.items() if k in ("input_ids", "attention_mask", "labels")}
            loss = model(**batch, use_cache=False).loss
            if not torch.isfinite(loss):
                raise ValueError(f"example {count}: the loss is {float(loss)} (no response tokens to score?)")
            loss.backward()
            count += 1
    finally:
        for h in handles:
            h.remove()
        for name, p in params.items():
            p.grad = None
            p.requires_grad_(needs_grad[name])
        model.train(was_training)
    if count == 0:
        raise ValueError("no seed examples: Seeking's sensitivity needs at least one")
    return acc, count
