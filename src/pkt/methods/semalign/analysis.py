"""SemAlign's two analyses (rule ``analyze_semalign``): layer CKA before/after, and the bases check.

* **CKA** (the paper's analysis): linear CKA between every teacher layer's and every student layer's
  output on the same test inputs (token rows: both models read the same tokens), for the vanilla student
  and for the student with its SemAlign adapter. The paper reports a high depth diagonal that alignment
  preserves.
* **Bases check** (the paper's motivation): decompose each layer's output over a set of unit bases and
  recompose it, r_hat = B (B^T r), and report the mean cosine to r, per layer, for the output-side bases
  (the pinv of the LM head, what SemAlign maps through), the input embedding's rows, and random bases.

At 13B -> 7B every layer's output at every token would take about 41 GB in fp32, and a CKA per pair of
layers (2 x 1,280) would recompute both Gram matrices each time. So both analyses read a fixed random
sample of the inputs' tokens (``semalign.analysis_tokens``, the same tokens for every model; all of them
when there are fewer), gathered batch by batch on the model's device, and the CKA matrix comes from one
centred, unit-norm Gram matrix per layer (:func:`pkt.methods.semalign.bases.unit_gram`), computed once:
CKA(i, j) = <K_i, K_j>.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from pkt.layers.importance import decoder_layers  # noqa: E402
from pkt.layers.pairing_plot import save_atomic  # noqa: E402
from pkt.methods.semalign.bases import recompose_cosine, semantic_bases, unit_gram  # noqa: E402
from pkt.methods.semalign.targets import layer_signals  # noqa: E402


def token_sample(batches: Sequence[Mapping[str, torch.Tensor]], n_tokens: int | None, seed: int = 0
                 ) -> list[torch.Tensor]:
    """Per batch, the positions (into its real tokens, in mask order) of a fixed random sample of ``n_tokens``
    of all the batches' real tokens; every token when ``n_tokens`` is None or not smaller."""
    counts = [int(b["attention_mask"].sum()) for b in batches]
    total = sum(counts)
    if n_tokens is None or n_tokens >= total:
        return [torch.arange(n) for n in counts]
    chosen = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n_tokens].sort().values
    starts = torch.tensor([0, *counts]).cumsum(0)
    return [chosen[(chosen >= starts[i]) & (chosen < starts[i + 1])] - starts[i] for i in range(len(batches))]


@torch.no_grad()
def layer_outputs(model: torch.nn.Module, batches: Sequence[Mapping[str, torch.Tensor]],
                  keep: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Per decoder layer, its fp32 output [N, D] at the real tokens of ``batches`` (index 0 = layer 1), or only
    at the positions ``keep`` (:func:`token_sample`), gathered on the model's device."""
    n_layers = len(decoder_layers(model))
    device = next(model.parameters()).device
    per_layer: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]
    for b, batch in enumerate(batches):
        batch = {k: v.to(device) for k, v in batch.items()}
        signals, _ = layer_signals(model, batch, range(n_layers), "output")
        mask = batch["attention_mask"].bool()
        for i in range(n_layers):
            rows = signals[i][mask]
            per_layer[i].append((rows if keep is None else rows[keep[b].to(device)]).float())
    return [torch.cat(rows) for rows in per_layer]


def cka_matrix(teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor]) -> list[list[float]]:
    """[L_T][L_S] linear CKA between every teacher layer and every student layer (rows = the same tokens), each
    layer's Gram matrix computed once."""
    grams = torch.stack([unit_gram(s) for s in student]).flatten(1)  # [L_S, n^2]
    return [(grams @ unit_gram(t.to(grams.device)).flatten()).tolist() for t in teacher]


def unit_columns(matrix: torch.Tensor) -> torch.Tensor:
    return matrix / matrix.norm(dim=0, keepdim=True).clamp_min(1e-12)


def bases_check(outputs: Sequence[torch.Tensor], lm_head: torch.Tensor, embed: torch.Tensor, seed: int = 0
                ) -> dict[str, list[float]]:
    """{bases: [mean cos(r, recomposed r) per layer]} for output-side, input-embedding and random bases."""
    gen = torch.Generator().manual_seed(seed)
    sets = {
        "output (pinv lm_head)": semantic_bases(lm_head.double()),
        "input embedding": unit_columns(embed.double().T),
        "random": unit_columns(torch.randn(embed.shape[1], embed.shape[0], generator=gen, dtype=torch.float64)),
    }
    sets = {name: bases.to(outputs[0].device) for name, bases in sets.items()}  # once, not once per layer
    return {name: [recompose_cosine(h, bases) for h in outputs] for name, bases in sets.items()}


def plot_cka(before: list[list[float]], after: list[list[float]], path: str | os.PathLike[str], title: str) -> Path:
    """Two heat maps (teacher layers x student layers): vanilla student, student with SemAlign."""
    fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.4), sharey=True)
    for ax, values, name in zip(axes, (before, after), ("vanilla student", "student + SemAlign")):
        image = ax.imshow(values, origin="lower", vmin=0, vmax=1, cmap="magma", aspect="auto")
        ax.set_xticks(range(len(values[0])), [str(k + 1) for k in range(len(values[0]))])
        ax.set_yticks(range(len(values)), [str(k + 1) for k in range(len(values))])
        ax.set_xlabel("student layer")
        ax.set_title(name, fontsize=9)
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    axes[0].set_ylabel("teacher layer")
    fig.colorbar(image, ax=axes, label="linear CKA")
    fig.suptitle(title, fontsize=9)
    try:
        return save_atomic(fig, path)
    finally:
        plt.close(fig)


def plot_bases(checks: Mapping[str, Mapping[str, list[float]]], path: str | os.PathLike[str], title: str) -> Path:
    """One panel per model: mean cos(r, recomposed r) against layer, one line per kind of bases."""
    fig, axes = plt.subplots(1, len(checks), figsize=(3.6 * len(checks), 3.0), squeeze=False)
    for ax, (model, lines) in zip(axes[0], checks.items()):
        for name, values in lines.items():
            ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("layer")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("mean cos(r, B B^T r)")
    fig.suptitle(title, fontsize=9)
    try:
        return save_atomic(fig, path)
    finally:
        plt.close(fig)


def summary(before: list[list[float]], after: list[list[float]], checks: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers behind both figures, for analysis.json."""
    return {"cka_before": before, "cka_after": after, "bases_check": checks, "layer_index_base": 1,
            "cka_definition": "linear CKA of layer outputs over a fixed sample of the inputs' real tokens",
            "bases_definition": "mean over tokens of cos(r, B B^T r), B = unit-column bases [D, V]"}
