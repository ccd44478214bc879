"""Figure of a teacher/student layer pairing (SemAlign Section 4.1 vs Seeking's top-L_S map).

Two vertical stacks (teacher left, student right; layer 1 at the bottom, each stack spanning the same
height so that relative depth lines up). Each layer is a horizontal bar whose length and colour show
its importance normalised by the largest |score| of its model. Solid lines join SemAlign's depth-map
pairs, the critical pair (l_T(k†), k†) is drawn thick and red, and Seeking's map is dashed and faint. A
star marks l*; where l* is not a depth-map partner, a red arrow leads from it to l_T(k†), the layer the
critical pair starts at. The legend below defines every symbol, so the figure reads without the paper.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pkt.io import atomic_path  # noqa: E402

X_TEACHER, X_STUDENT, BAR = 0.0, 1.0, 0.35
GAP = 0.08  # room between a stack and its links for the layer numbers


def normalise(scores: Sequence[float]) -> list[float]:
    """|score| / max |score| (all zeros stay zero), so both models share a 0..1 scale."""
    top = max((abs(float(s)) for s in scores), default=0.0)
    return [abs(float(s)) / top if top > 0 else 0.0 for s in scores]


def layer_y(layer: int, n_layers: int) -> float:
    """Height of a 1-indexed layer: centres of n equal slots in [0, 1], layer 1 lowest."""
    return (layer - 0.5) / n_layers


def _draw_stack(ax: Any, scores: Sequence[float], x: float, direction: int, label: str, cmap: Any) -> None:
    n = len(scores)
    height = min(0.8 / n, 0.06)
    for layer, value in enumerate(normalise(scores), start=1):
        y = layer_y(layer, n)
        ax.barh(y, direction * BAR * value, left=x, height=height, color=cmap(value), edgecolor="0.3", lw=0.4)
        if n <= 64:
            ax.text(x - direction * GAP / 2, y, str(layer), ha="center", va="center", fontsize=6, color="0.3")
        ax.plot([x - direction * GAP], [y], "o", color="0.2", ms=2.5, zorder=3)
    ax.text(x + direction * BAR / 2, 1.03, label, ha="center", va="bottom", fontsize=9, weight="bold")


def _link(ax: Any, teacher: int, student: int, n_t: int, n_s: int, **style: Any) -> None:
    ax.plot([X_TEACHER + GAP, X_STUDENT - GAP], [layer_y(teacher, n_t), layer_y(student, n_s)], **style)


def definitions(pairing: dict) -> list[tuple[str, dict[str, Any]]]:
    """(legend text, line style) per symbol of the figure, each defined where it is shown: the depth map
    l_T(k), l*, k†, the critical pair SemAlign trains, Seeking's map and the bars. A style of ``{}`` is a
    text-only entry."""
    crit, l_star, k_dag = pairing["pair"], pairing["l_star"]["layer"], pairing["k_dagger"]["layer"]
    n_t, n_s = pairing.get("n_teacher", "L_T"), pairing.get("n_student", "L_S")
    entries = [
        (f"depth map: student layer k \u2192 teacher layer l_T(k) = max(1, \u230a{n_t}/{n_s}\u00b7k\u230b)",
         {"color": "0.45", "lw": 0.8}),
        (f"l* = {l_star}: the teacher layer of highest importance", {"marker": "*", "color": "tab:red", "ls": "",
                                                                     "ms": 9}),
        (f"k\u2020 = {k_dag}: the first student layer k with l_T(k) \u2265 l*", {}),
        (f"critical pair (l_T(k\u2020), k\u2020) = ({crit['teacher']}, {crit['student']}): the pair SemAlign "
         "trains", {"color": "tab:red", "lw": 2.5}),
    ]
    interp = pairing.get("interpolation")
    if interp:
        entries.append((f"  its teacher target blends layers {interp['a']} and {interp['b']} "
                        f"(\u03bb = {interp['lambda']:.2f}): L_T/L_S is not integral", {}))
    if pairing.get("seeking", {}).get("map"):
        entries.append(("Seeking: the top-L_S teacher layers by importance, in depth order",
                        {"ls": "--", "color": "tab:orange", "alpha": 0.6, "lw": 0.8}))
    entries.append(("bars: |importance| / max |importance| within each model", {}))
    return entries


def _mark_move(ax: Any, l_star: int, partner: int, n_t: int) -> None:
    """Arrow from l* to l_T(k†) on the teacher's outer side, with why: l* has no student partner."""
    x = X_TEACHER - BAR - 0.05
    ax.annotate("", xy=(x, layer_y(partner, n_t)), xytext=(x, layer_y(l_star, n_t)),
                arrowprops={"arrowstyle": "-|>", "color": "tab:red", "lw": 1.0, "shrinkA": 7, "shrinkB": 4,
                            "connectionstyle": f"arc3,rad={0.5 if partner > l_star else -0.5}"})
    ax.text(x - 0.09, (layer_y(l_star, n_t) + layer_y(partner, n_t)) / 2,
            f"l* = {l_star} has no\nstudent partner:\nSemAlign moves\nup to l_T(k\u2020) = {partner}",
            ha="right", va="center", fontsize=6.5, color="tab:red")


def draw_pairing(
    ax: Any, teacher_scores: Sequence[float], student_scores: Sequence[float], pairing: dict
) -> None:
    """Draw stacks, depth-map links, the Seeking map and the critical pair onto ``ax``, with a legend that
    defines every symbol (:func:`definitions`); where l* is not a depth-map partner, an arrow from l* to the
    critical pair's teacher layer says why the two differ."""
    n_t, n_s = len(teacher_scores), len(student_scores)
    cmap = plt.get_cmap("viridis")
    for pair in pairing.get("seeking", {}).get("map", []):
        _link(ax, pair["teacher"], pair["student"], n_t, n_s, ls="--", color="tab:orange", alpha=0.35, lw=0.8)
    for pair in pairing["depth_map"]:
        _link(ax, pair["teacher"], pair["student"], n_t, n_s, color="0.45", alpha=0.8, lw=0.8)
    crit = pairing["pair"]
    _link(ax, crit["teacher"], crit["student"], n_t, n_s, color="tab:red", lw=2.5, zorder=4)
    l_star = pairing["l_star"]["layer"]
    ax.plot([X_TEACHER - BAR - 0.05], [layer_y(l_star, n_t)], "*", color="tab:red", ms=10, zorder=5)
    if l_star != crit["teacher"]:
        _mark_move(ax, l_star, crit["teacher"], n_t)
    _draw_stack(ax, teacher_scores, X_TEACHER, -1, f"teacher ({n_t} layers)", cmap)
    _draw_stack(ax, student_scores, X_STUDENT, +1, f"student ({n_s} layers)", cmap)
    for text, style in definitions(pairing):
        ax.plot([], [], **(style or {"ls": "", "marker": ""}), label=text)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=1, fontsize=7, frameon=False,
              handlelength=2.2)
    ax.set_xlim(X_TEACHER - BAR - 0.42, X_STUDENT + BAR + 0.05)
    ax.set_ylim(0, 1.08)
    ax.axis("off")


def save_atomic(fig: Any, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Save ``fig`` atomically (``pkt.io.atomic_path``), in the format named by the path's suffix."""
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=target.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    return target


def plot_pairing(
    teacher_scores: Sequence[float],
    student_scores: Sequence[float],
    pairing: dict,
    title: str,
    path: str | os.PathLike[str],
) -> Path:
    """Draw the pairing figure (see module docstring) and write it atomically to ``path``."""
    n = max(len(teacher_scores), len(student_scores))
    fig, ax = plt.subplots(figsize=(5.6, max(3.5, 0.12 * n + 2.0)))
    try:
        draw_pairing(ax, teacher_scores, student_scores, pairing)
        ax.set_title(title, fontsize=10)
        return save_atomic(fig, path)
    finally:
        plt.close(fig)
