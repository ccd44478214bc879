"""The extraction figure: Seeking's sensitivity per teacher layer x module group, kept layers marked."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pkt.layers.pairing_plot import save_atomic  # noqa: E402
from pkt.methods.seeking.extract import SCORE_GROUPS  # noqa: E402


def sensitivity_figure(record: dict[str, Any], title: str) -> Figure:
    """The figure of :func:`plot_sensitivity` (returned open, for tests to inspect)."""
    groups, totals = record["group_scores"], record["layer_scores"]
    n = len(totals)
    values = [[_log(g[c]) for c in SCORE_GROUPS] for g in groups]
    fig = plt.figure(figsize=(7.0, 1.5 + 0.36 * n), layout="constrained")
    grid = fig.add_gridspec(1, 4, width_ratios=[len(SCORE_GROUPS), 0.12, 1, 0.12])
    ax = fig.add_subplot(grid[0])
    ax_total = fig.add_subplot(grid[2], sharey=ax)
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis")
    total = ax_total.imshow([[_log(t)] for t in totals], origin="lower", aspect="auto", cmap="cividis")
    fig.colorbar(image, cax=fig.add_subplot(grid[1]), label="log10 summed |W * dL/dW|")
    fig.colorbar(total, cax=fig.add_subplot(grid[3]), label="log10 summed |W * dL/dW|")
    ax_total.tick_params(labelleft=False)
    ax.set_xticks(range(len(SCORE_GROUPS)), SCORE_GROUPS)
    ax_total.set_xticks([0], ["layer total"])
    ax.set_title("per module group (one colour scale)", fontsize=8)
    ax_total.set_title("whole layer\n(its own scale)", fontsize=8)
    partner = {teacher: student for student, teacher in enumerate(record["kept_layers"], start=1)}
    ax.set_yticks(range(n), [f"{i} -> student {partner[i]}" if i in partner else str(i) for i in range(1, n + 1)])
    ax.set_ylabel("teacher layer")
    for panel, width in ((ax, len(SCORE_GROUPS)), (ax_total, 1)):
        for teacher in record["kept_layers"]:
            panel.add_patch(plt.Rectangle((-0.5, teacher - 1.5), width, 1, fill=False, edgecolor="red",
                                          linewidth=1.6, clip_on=False))
    fig.suptitle(f"{title}\nkept (red): {record['kept_layers']} by {record.get('layer_choice', 'sensitivity')}",
                 fontsize=8)
    return fig


def plot_sensitivity(record: dict[str, Any], path: str | os.PathLike[str], title: str) -> Path:
    """Heat maps of log10 summed sensitivity, one row per teacher layer (layer 1 at the bottom): one column per
    module group on one colour scale, and beside it the layer total on a scale of its own (a total sums its
    groups, so on their scale it would wash them out); each kept layer is outlined in
    both and its tick names its student layer."""
    fig = sensitivity_figure(record, title)
    try:
        return save_atomic(fig, path)
    finally:
        plt.close(fig)


def _log(value: float) -> float:
    return math.log10(value) if value > 0 else float("nan")
