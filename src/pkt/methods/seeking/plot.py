"""The extraction figure: Seeking's sensitivity per teacher layer x module group, kept layers marked."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pkt.layers.pairing_plot import save_atomic  # noqa: E402
from pkt.methods.seeking.extract import SCORE_GROUPS  # noqa: E402


def plot_sensitivity(record: dict[str, Any], path: str | os.PathLike[str], title: str) -> Path:
    """Heat map of log10 summed sensitivity, one row per teacher layer (layer 1 at the bottom) and one column
    per module group, with a layer-total column; each kept layer is outlined and its tick names its student
    layer."""
    groups = record["group_scores"]
    totals = record["layer_scores"]
    n = len(totals)
    columns = [*SCORE_GROUPS, "layer"]
    values = [[_log(g[c]) for c in SCORE_GROUPS] + [_log(t)] for g, t in zip(groups, totals)]
    fig, ax = plt.subplots(figsize=(4.6, 0.9 + 0.36 * n))
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=ax, label="log10 summed |W * dL/dW|")
    ax.set_xticks(range(len(columns)), columns)
    partner = {teacher: student for student, teacher in enumerate(record["kept_layers"], start=1)}
    ax.set_yticks(range(n), [f"{i} -> student {partner[i]}" if i in partner else str(i) for i in range(1, n + 1)])
    ax.set_ylabel("teacher layer")
    for teacher in record["kept_layers"]:
        ax.add_patch(plt.Rectangle((-0.5, teacher - 1.5), len(columns), 1, fill=False, edgecolor="red", linewidth=1.6))
    ax.set_title(f"{title}\nkept (red): {record['kept_layers']} by {record.get('layer_choice', 'sensitivity')}",
                 fontsize=8)
    try:
        return save_atomic(fig, path)
    finally:
        plt.close(fig)


def _log(value: float) -> float:
    return math.log10(value) if value > 0 else float("nan")
