"""Figures of a run (matplotlib, Agg): per-benchmark bars with error bars, and training curves."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from pkt.layers.pairing_plot import save_atomic  # noqa: E402
from pkt.report.tables import ROWS  # noqa: E402


def benchmark_bars(table: pd.DataFrame, path: str | os.PathLike[str], title: str) -> Path:
    """One group of bars per benchmark (and the average), one bar per row, std over seeds as error bars."""
    columns = list(table["std"].columns)
    rows = list(table.index)
    fig, ax = plt.subplots(figsize=(1.6 * len(columns) + 2, 3.6))
    width = 0.8 / max(len(rows), 1)
    for i, (pair, row) in enumerate(rows):
        means = [table.loc[(pair, row), ("mean", c)] for c in columns]
        stds = [table.loc[(pair, row), ("std", c)] for c in columns]
        label = ROWS.get(row, row) + (f" ({pair})" if len({p for p, _ in rows}) > 1 else "")
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(columns))]
        ax.bar(xs, means, width, yerr=[0 if pd.isna(s) else s for s in stds], capsize=2, label=label)
    ax.set_xticks(range(len(columns)), columns)
    ax.set_ylabel("score (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncols=min(len(rows), 5), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    try:
        return save_atomic(fig, path)
    finally:
        plt.close(fig)


def training_curves(curves: list[dict], path: str | os.PathLike[str], title: str) -> Path:
    """Loss against step, one panel per task, one line per method and seed.

    ``curves``: dicts with ``method``, ``task``, ``seed`` and ``loss_curve`` ([[step, loss], ...]).
    """
    tasks = sorted({c["task"] for c in curves}) or ["(no training runs)"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 2.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for c in (c for c in curves if c["task"] == task):
            steps, losses = zip(*c["loss_curve"]) if c["loss_curve"] else ((), ())
            ax.plot(steps, losses, label=f"{ROWS.get(c['method'], c['method'])} s{c['seed']}")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("training loss")
    fig.suptitle(title, fontsize=10)
    try:
        return save_atomic(fig, path)
    finally:
        plt.close(fig)


TRAINED = [row for row in ROWS if row not in ("student", "teacher")]  # the rows a training curve can have


def curves_table(curves: list[dict], methods: list[str] = TRAINED) -> pd.DataFrame:
    """Training loss by step, one column per method: the mean over its tasks and seeds at each logged step.

    The data behind :func:`training_curves` in the wide shape ``dvc plots`` draws (x: step, one line per
    column). Every method of ``methods`` gets a column, empty where it did not run or logged no loss, so
    that ``dvc.yaml``'s fixed list of lines finds each one; a step where only some runs still train
    averages those. ``curves`` as in :func:`training_curves`.
    """
    rows = [(c["method"], step, loss) for c in curves for step, loss in c["loss_curve"]]
    long = pd.DataFrame(rows, columns=["method", "step", "loss"])
    wide = long.groupby(["step", "method"])["loss"].mean().unstack("method")
    columns = list(methods) + sorted(set(wide.columns) - set(methods))
    return wide.reindex(columns=columns).sort_index().round(6).reset_index().rename_axis(columns=None)
