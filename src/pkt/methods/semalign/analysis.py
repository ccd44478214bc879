"""SemAlign's two analyses (rule ``analyze_semalign``): layer CKA before/after, and the bases check.

* **CKA** (the paper's analysis): linear CKA between every teacher layer's and every student layer's
  output on the same test inputs (token rows: both models read the same tokens), for the vanilla student
  and for the student with its SemAlign adapter. The paper reports a high depth diagonal that alignment
  preserves.
* **Bases check** (the paper's motivation): decompose each layer's output r over a set of unit bases B
  [D, V] and recompose it, then report the mean cos(r, r_hat) per layer, for the output-side bases (unit
  columns of pinv(lm_head), what SemAlign maps through), the input embedding's rows and random Gaussian
  bases. The coefficients have two readings (:data:`RULES`, :func:`pkt.methods.semalign.bases.recompose_cosine`),
  and both are reported because they give opposite pictures:

  - ``cosine``: coefficients B^T r (cosines to the unit bases), r_hat = B B^T r. Random unit bases
    recompose well (B B^T ~ (V/D) I) and the pinv bases of a trained, anisotropic head worse;
  - ``logit``: coefficients = the model's logits W r (W its own LM head, for every kind of bases),
    r_hat = B W r. The pinv bases give ~1 (exactly 1 unnormalised: pinv(W) W = I) and bases unrelated to
    W (random) ~0: the paper's figure (about 1 for the output-side bases, about 0 for the others).

At 13B -> 7B every layer's output at every token would take about 41 GB in fp32, and a CKA per pair of
layers (2 x 1,280) would recompute both Gram matrices each time. So both analyses read a fixed random
sample of the inputs' tokens (``semalign.analysis_tokens``, the same tokens for every model; all of them
when there are fewer), gathered batch by batch on the model's device, and the CKA matrix comes from one
centred, unit-norm Gram matrix per layer (:func:`pkt.methods.semalign.bases.unit_gram`), computed once:
CKA(i, j) = <K_i, K_j>. Each kind of bases is likewise built once and reused for every layer and rule.
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
import torch.nn.functional as F  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pkt.layers.importance import decoder_layers  # noqa: E402
from pkt.layers.pairing_plot import save_atomic  # noqa: E402
from pkt.methods.semalign.bases import semantic_bases, unit_columns, unit_gram  # noqa: E402
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


RULES = ("cosine", "logit")  # the bases check's two readings of the coefficients (module docstring)
BASES = ("output (pinv lm_head)", "input embedding", "random")  # the kinds of bases, in plotting order
R_HAT = {"cosine": "B B^T r", "logit": "B W r"}  # each rule's recomposition of r (W = the model's LM head)
BASES_DEFINITION = {
    "cosine": "cosine rule: mean over tokens of cos(r, B B^T r); coefficients B^T r are the cosines of r to the "
              "unit-column bases B [D, V]",
    "logit": "logit rule: mean over tokens of cos(r, B W r); coefficients W r are the model's logits (W = its own "
             "LM head [V, D], the same for every kind of bases), B the unit-column bases [D, V]",
    "bases": "output (pinv lm_head) = unit columns of pinv(W); input embedding = unit rows of the input embedding; "
             "random = unit columns of a seeded Gaussian [D, V] matrix",
}


def _recomposed_cosine(h: torch.Tensor, operator: torch.Tensor) -> float:
    """Mean over the rows r of h [N, D] of cos(r, P r), in float64, for a recomposition operator P [D, D]."""
    r = h.detach().double()
    return float(F.cosine_similarity(r, r @ operator.T, dim=-1, eps=1e-12).mean())


def bases_check(outputs: Sequence[torch.Tensor], lm_head: torch.Tensor, embed: torch.Tensor, seed: int = 0
                ) -> dict[str, dict[str, list[float]]]:
    """{rule: {bases: [mean cos(r, r_hat) per layer]}} for :data:`RULES` x :data:`BASES`.

    ``outputs`` are the layers' outputs [N, D] (:func:`layer_outputs`), ``lm_head`` W and ``embed`` the
    model's LM head and input embedding, both [V, D] (HF layout). The logit rule's coefficients are W r for
    every kind of bases, so the kinds differ only in how the logits are recomposed. The numbers are
    :func:`pkt.methods.semalign.bases.recompose_cosine`'s (tested), computed in float64 through the [D, D]
    operator B B^T or B W, built once per kind and rule on the outputs' device (each bases matrix once):
    N x D x D per layer instead of the N x V coefficients, which matters at V = 32,000 over 40 layers.
    """
    if lm_head.ndim != 2 or embed.ndim != 2 or lm_head.shape != embed.shape:
        raise ValueError(f"expected an LM head and an input embedding of one shape [V, D]; got "
                         f"{tuple(lm_head.shape)} and {tuple(embed.shape)}")
    device = outputs[0].device
    gen = torch.Generator().manual_seed(seed)
    sets = {
        BASES[0]: semantic_bases(lm_head.double()),
        BASES[1]: unit_columns(embed.double().T),
        BASES[2]: unit_columns(torch.randn(embed.shape[1], embed.shape[0], generator=gen, dtype=torch.float64)),
    }
    head = lm_head.detach().double().to(device)
    found: dict[str, dict[str, list[float]]] = {rule: {} for rule in RULES}
    for name, bases in sets.items():
        bases = bases.to(device)
        for rule in RULES:
            # r_hat = B (B^T r) or B (W r) = P r with the [D, D] operator P built once, not N x V per layer
            operator = bases @ (bases.T if rule == "cosine" else head)
            found[rule][name] = [_recomposed_cosine(h, operator) for h in outputs]
    return found


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


def model_label(role: str, name: str) -> str:
    """'teacher' where the model is named after its role (the toy world's), else 'teacher (Llama-2-13b)': the
    key of a model in the bases check and the title of its panels, naming the model once."""
    return role if name in ("", role) else f"{role} ({name})"


def layer_ticks(ax: Any, n_layers: int) -> None:
    """Integer layer ticks 1..n (every one up to 12 layers, else MaxNLocator's integer choice) and limits half a
    layer beyond the ends, so a 2-layer model shows 1 and 2 and nothing between."""
    if n_layers <= 12:
        ax.set_xticks(range(1, n_layers + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, n_layers + 0.5)


def bases_figure(checks: Mapping[str, Mapping[str, Mapping[str, list[float]]]], title: str) -> Figure:
    """The figure of :func:`plot_bases` (returned open, for tests to inspect)."""
    n_cols = max(len(rules) for rules in checks.values())
    fig, axes = plt.subplots(len(checks), n_cols, figsize=(3.8 * n_cols, 2.9 * len(checks) + 0.6), squeeze=False)
    cells = [(axes[i][j], model, rule, lines) for i, (model, rules) in enumerate(checks.items())
             for j, (rule, lines) in enumerate(rules.items())]
    for ax in set(axes.flat) - {cell[0] for cell in cells}:
        ax.set_visible(False)
    kinds = list(dict.fromkeys([*BASES, *(name for *_, lines in cells for name in lines)]))
    colors = {name: plt.get_cmap("tab10")(i) for i, name in enumerate(kinds)}
    for ax, model, rule, lines in cells:
        for name, values in lines.items():
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, color=colors[name],
                    label=f"{name} bases")
        ax.axhline(0.0, color="grey", linewidth=0.5)
        n_layers = max(len(v) for v in lines.values())
        ax.set_title(f"{model}, {n_layers} layers\n{rule} rule: r_hat = {R_HAT[rule]}", fontsize=8)
        ax.set_xlabel("layer", fontsize=8)
        ax.set_ylabel(f"mean cos(r, {R_HAT[rule]})", fontsize=8)
        ax.set_ylim(min(-0.05, *(min(v) - 0.03 for v in lines.values())), 1.05)
        layer_ticks(ax, n_layers)
    handles = [Line2D([], [], color=colors[name], marker="o", markersize=3, label=f"{name} bases") for name in kinds
               if any(name in lines for *_, lines in cells)]
    fig.legend(handles=handles, loc="lower center", ncols=len(handles), fontsize=7,
               frameon=False, title="bases (r = a layer's output, r_hat its recomposition)", title_fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_bases(checks: Mapping[str, Mapping[str, Mapping[str, list[float]]]], path: str | os.PathLike[str],
               title: str) -> Path:
    """One panel per model x rule ({model: :func:`bases_check`'s result}): mean cos(r, r_hat) against layer, one
    line per kind of bases (one colour per kind in every panel, one legend below them); each panel's title and
    y label name its model (once: :func:`model_label`), its rule and what r_hat is, its x-axis the model's
    layers as integer ticks."""
    fig = bases_figure(checks, title)
    try:
        return save_atomic(fig, path)
    finally:
        plt.close(fig)


def bases_summary(checks: Mapping[str, Any]) -> dict[str, Any]:
    """The bases check's numbers ({model: {rule: {bases: per layer}}}) with what each rule's number means."""
    return {"bases_check": checks, "layer_index_base": 1, "bases_rules": list(RULES),
            "bases_definition": BASES_DEFINITION}


def summary(before: list[list[float]], after: list[list[float]], checks: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers behind both figures, for analysis.json (the bases check under both rules, each named)."""
    return {"cka_before": before, "cka_after": after, **bases_summary(checks),
            "cka_definition": "linear CKA of layer outputs over a fixed sample of the inputs' real tokens"}
