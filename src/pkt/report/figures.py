"""Figures of a run (matplotlib, Agg): per-benchmark bars with error bars, and training curves.

Both figures give each method one colour (:func:`method_colors`, the same in both), the Student and the
Teacher greys, and one legend outside the axes. The training curves never put two kinds of loss on one
axis: a cross-entropy, KD's CE/KL mix and SemAlign's cosine terms have different scales and minima, so each
kind (:func:`loss_kind`) gets its own row of panels and y-axis.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pkt.layers.pairing_plot import save_atomic  # noqa: E402
from pkt.report.tables import ROWS  # noqa: E402
from pkt.rows import fixed_row  # noqa: E402

TRAINED = [row for row in ROWS if row not in ("student", "teacher")]  # the rows a training curve can have
VANILLA = {"student": "0.78", "teacher": "0.35"}  # the untrained models: greys, so the methods' colours stand out
# tab10 without its grey (kept for the vanilla rows), then tab20's light shades for runs with more methods
PALETTE = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 7] + [
    c for i, c in enumerate(plt.get_cmap("tab20").colors) if i % 2 and i not in (14, 15)]
SEED_STYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3))]  # seed i: SEED_STYLES[i % 6]
# Chance level (%) of a benchmark whose items are multiple choice: MMLU's four choices, in the papers' and the
# toy world's version and in its subsets; generation tasks (GSM8K, HumanEval, MBPP) have none.
CHANCE = {"MMLU": 25.0}


def method_colors(rows: list[str]) -> dict[str, Any]:
    """{row: colour}: greys for the Student and the Teacher, a method's colour fixed by its place in the tables'
    order (:data:`TRAINED`) so that it is the same in every figure whichever methods ran."""
    order = TRAINED + sorted(set(rows) - set(TRAINED) - set(VANILLA))
    return {row: VANILLA.get(row) or PALETTE[order.index(row) % len(PALETTE)] for row in rows}


def chance_level(column: str, chance: Mapping[str, float] = CHANCE) -> float | None:
    """The chance score (%) of a benchmark column ('MMLU held-out' inherits MMLU's), None where none applies."""
    return next((level for bench, level in chance.items() if column == bench or column.startswith(f"{bench} ")),
                None)


def items_per_column(tidy: pd.DataFrame) -> dict[str, str]:
    """{benchmark column: its item count} from ``load_results``' frame, '150-200' where rows scored different
    counts (then the bars do not share a test set)."""
    found = {}
    for bench, n in tidy.groupby("benchmark")["n"]:
        low, high = int(n.min()), int(n.max())
        found[bench] = str(low) if low == high else f"{low}-{high}"
    return found


def bars_figure(table: pd.DataFrame, title: str, n_items: Mapping[str, str | int] | None = None,
                chance: Mapping[str, float] = CHANCE) -> Figure:
    """The figure of :func:`benchmark_bars` (returned open, for tests to inspect)."""
    columns = list(table["std"].columns)
    rows = list(table.index)
    pairs = list(dict.fromkeys(p for p, _ in rows))
    colors = method_colors([row for _, row in rows])
    fig, ax = plt.subplots(figsize=(1.6 * len(columns) + 2, 3.8))
    width = 0.8 / max(len(rows), 1)
    for i, (pair, row) in enumerate(rows):
        means = [table.loc[(pair, row), ("mean", c)] for c in columns]
        stds = [table.loc[(pair, row), ("std", c)] for c in columns]
        label = ROWS.get(row, row) + (f" ({pair})" if len(pairs) > 1 else "")
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(columns))]
        ax.bar(xs, means, width, yerr=[0 if pd.isna(s) else s for s in stds], capsize=2, label=label,
               color=colors[row], hatch=["", "//", "..", "xx"][pairs.index(pair) % 4], edgecolor="white", lw=0.3)
    levels = {j: chance_level(c, chance) for j, c in enumerate(columns)}
    levels = {j: level for j, level in levels.items() if level is not None}
    for k, (j, level) in enumerate(levels.items()):
        label = "chance: " + ", ".join(f"{v:g}%" for v in dict.fromkeys(levels.values())) if k == 0 else None
        ax.hlines(level, j - 0.45, j + 0.45, colors="black", linestyles="--", lw=1.0, zorder=5, label=label)
    counts = n_items or {}
    ax.set_xticks(range(len(columns)), [f"{c}\n{counts[c]} items" if c in counts else c for c in columns])
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, max(100.0, ax.get_ylim()[1]))
    ax.set_title(title, fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("chance"))  # the rows first
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def benchmark_bars(table: pd.DataFrame, path: str | os.PathLike[str], title: str,
                   n_items: Mapping[str, str | int] | None = None, chance: Mapping[str, float] = CHANCE) -> Path:
    """One group of bars per benchmark (and the average), one bar per row, std over seeds as error bars.

    A dashed line marks chance where the benchmark is multiple choice (``chance``: {column: %}; a subset
    column inherits its benchmark's), and each tick names the benchmark's item count where ``n_items`` has it
    (:func:`items_per_column`), so a reader sees how far above guessing and on how many items a bar stands.
    """
    fig = bars_figure(table, title, n_items, chance)
    try:
        return save_atomic(fig, path)
    finally:
        plt.close(fig)


def loss_kind(curve: Mapping[str, Any]) -> str:
    """What a run's logged training loss is, from its method and ``method_settings``: runs of one kind share
    a y-axis, runs of two kinds never do. An unknown method is a kind of its own."""
    method = curve["method"]
    base = (fixed_row(method) or (method, {}))[0]
    settings = curve.get("method_settings") or {}
    if base in ("lora", "seeking"):
        return "cross-entropy"
    if base == "kd":
        return "KD: (1-a) CE + a T\u00b2 KL"
    if base == "semalign":
        terms = ("relational + top-k KL" if settings.get("variant") == "v2"
                 else "(1 - cos) layer + output")
        return f"SemAlign: {terms}" + (" + CE" if settings.get("ce_weight") else "")
    if base == "fitnet":
        return f"FitNet: {settings.get('loss', 'cosine')} hint + CE"
    if base == "laten":
        return "LaTen translator: LM loss + penalty"
    return f"{ROWS.get(method, method)} loss"


def _x_unit(curve: Mapping[str, Any]) -> str:
    """What a run's logged step counts: LaTen logs its translator's steps, every other method its adapter's."""
    return "translator step" if (fixed_row(curve["method"]) or (curve["method"],))[0] == "laten" else "training step"


def curves_figure(curves: list[dict], title: str) -> Figure:
    """The figure of :func:`training_curves` (returned open, for tests to inspect)."""
    tasks = sorted({c["task"] for c in curves}) or ["(no training runs)"]
    methods = sorted({c["method"] for c in curves}, key=lambda m: (TRAINED + [m]).index(m))
    ordered = sorted(curves, key=lambda c: (_x_unit(c) != "training step", methods.index(c["method"])))
    kinds = list(dict.fromkeys(loss_kind(c) for c in ordered)) or ["training loss"]
    units = {loss_kind(c): _x_unit(c) for c in ordered}
    seeds = sorted({c["seed"] for c in curves})
    colors = method_colors(methods)
    fig, axes = plt.subplots(len(kinds), len(tasks), figsize=(2.9 * len(tasks) + 2.2, 1.9 * len(kinds) + 1.0),
                             squeeze=False)
    for r, kind in enumerate(kinds):
        for ax, task in zip(axes[r], tasks):
            for c in curves:
                if c["task"] == task and loss_kind(c) == kind and c["loss_curve"]:
                    steps, losses = zip(*c["loss_curve"])
                    ax.plot(steps, losses, color=colors[c["method"]], lw=1.1,
                            ls=SEED_STYLES[seeds.index(c["seed"]) % len(SEED_STYLES)])
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.25, lw=0.5)
            if r == 0:
                ax.set_title(task, fontsize=9)
            unit = units.get(kind, "training step")
            if r == len(kinds) - 1 or units.get(kinds[r + 1]) != unit:  # the last row of each kind of step
                ax.set_xlabel(unit, fontsize=8)
        axes[r][0].set_ylabel(textwrap.fill(kind, 22), fontsize=8)
    handles = [Line2D([], [], color=colors[m], lw=2, label=ROWS.get(m, m)) for m in methods]
    handles += [Line2D([], [], color="0.2", lw=1.1, ls=SEED_STYLES[i % len(SEED_STYLES)], label=f"seed {s}")
                for i, s in enumerate(seeds)]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.93), fontsize=8, frameon=False,
               title="colour: method\nline: seed", title_fontsize=8, alignment="left")
    fig.suptitle(f"Training loss by step: {title}\none row per kind of loss (its own y-axis), one column per task",
                 fontsize=10)
    fig.tight_layout()
    return fig


def training_curves(curves: list[dict], path: str | os.PathLike[str], title: str) -> Path:
    """Logged training loss against step: one row of panels per kind of loss (:func:`loss_kind`, its own
    y-axis), one column per task; one colour per method (as in the bars), one line style per seed, one
    legend beside the panels.

    ``curves``: dicts with ``method``, ``task``, ``seed`` and ``loss_curve`` ([[step, loss], ...]), and
    optionally ``method_settings`` (training.json's: which terms the loss has).
    """
    fig = curves_figure(curves, title)
    try:
        return save_atomic(fig, path)
    finally:
        plt.close(fig)


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
