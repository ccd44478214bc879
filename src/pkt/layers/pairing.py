"""Teacher/student layer pairing (SemAlign Section 4.1; Seeking Neural Nuggets' layer selection).

All layer numbers here are **1-indexed**, as in the papers: layer 1 is the first decoder block and
``scores[i]`` belongs to layer ``i + 1``. Every pairing and importance JSON says so
(``"layer_index_base": 1``); code that indexes modules (peft's ``layers_to_transform``,
``model.model.layers[i]``) converts in one place, :func:`to_module_index`.

- Depth-aware map (SemAlign): student layer k pairs with teacher layer l_T(k) = max(1, floor(L_T/L_S * k)).
- Critical teacher layer l*: the teacher layer with the highest attribution. When l* is not itself a
  partner l_T(k), SemAlign moves to the first student layer whose partner is at or beyond it,
  k† = min{k : l_T(k) >= l*}, and operates on the pair (l_T(k†), k†).
- Optional interpolation for non-integer depth ratios: u = L_T*k/L_S, a = max(1, min(floor(u), L_T-1)),
  b = a+1, lambda = clip(u-a, 0, 1), target = (1-lambda) h_T^(a) + lambda h_T^(b).
- Seeking's map (for comparison): keep the top-L_S teacher layers by score, re-sorted by index; the i-th
  kept layer maps to student layer i.

A teacher shallower than its student (SmolLM2-1.7B has 24 layers, the 360M 32) is paired by the same rules:
the depth map then gives some teacher layers to two student layers (l_T(k) repeats), k† and the interpolation
are defined as above, and the interpolation needs L_T >= 2 whenever the ratio is non-integral. Seeking's
top-L_S selection is undefined there (L_S > L_T), so its entry says so; ``seeking_top_layers`` enforces
L_S <= L_T, and the config check keeps Seeking out of such a pair.

Exact arithmetic (integers and ``fractions.Fraction``) is used throughout, so e.g. 40 -> 32 gives
floor(1.25 k) with no float rounding at k multiples of 4, and integral ratios give lambda exactly 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

CRITICAL_RULES = ("teacher_max", "teacher_max_abs")


def _check_depths(n_teacher: int, n_student: int) -> None:
    for name, n in (("n_teacher", n_teacher), ("n_student", n_student)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")


def check_scores(scores: Sequence[float], name: str) -> list[float]:
    """Return ``scores`` as floats; ValueError if empty or if any entry is non-finite (names the layer)."""
    if len(scores) == 0:
        raise ValueError(f"{name} scores are empty: need one score per layer")
    values = [float(s) for s in scores]
    bad = [f"layer {i + 1}={v}" for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name} scores are not finite: {', '.join(bad)}")
    return values


def depth_map(n_teacher: int, n_student: int) -> list[int]:
    """[l_T(1), ..., l_T(L_S)] with l_T(k) = max(1, floor(L_T * k / L_S)), in exact integer arithmetic."""
    _check_depths(n_teacher, n_student)
    return [max(1, (n_teacher * k) // n_student) for k in range(1, n_student + 1)]


def critical_teacher_layer(teacher_scores: Sequence[float], rule: str = "teacher_max") -> int:
    """The 1-indexed teacher layer with the highest score ("teacher_max") or |score| ("teacher_max_abs").

    Ties go to the lowest layer index (the first maximum), so the choice is deterministic.
    """
    if rule not in CRITICAL_RULES:
        raise ValueError(f"critical rule must be one of {CRITICAL_RULES}, got {rule!r}")
    values = check_scores(teacher_scores, "teacher")
    keys = [abs(v) for v in values] if rule == "teacher_max_abs" else values
    return keys.index(max(keys)) + 1


def critical_student_layer(l_star: int, n_teacher: int, n_student: int) -> int:
    """k† = min{k : l_T(k) >= l_star}; L_S if no such k (only possible for l_star > L_T, rejected here)."""
    _check_depths(n_teacher, n_student)
    if not 1 <= l_star <= n_teacher:
        raise ValueError(f"l_star must be a teacher layer in 1..{n_teacher} (1-indexed), got {l_star}")
    partners = depth_map(n_teacher, n_student)
    return next((k for k, l_t in enumerate(partners, start=1) if l_t >= l_star), n_student)


def interpolation(n_teacher: int, n_student: int, k: int) -> tuple[int, int, float]:
    """(a, b, lambda) blending teacher layers a and b = a+1 for student layer k (SemAlign's option).

    u = L_T*k/L_S (a Fraction), a = max(1, min(floor(u), L_T-1)), lambda = clip(u - a, 0, 1). At the top
    (u = L_T) this gives a = L_T-1, b = L_T, lambda = 1, i.e. exactly the last teacher layer.
    """
    _check_depths(n_teacher, n_student)
    if n_teacher < 2:
        raise ValueError("interpolation needs at least 2 teacher layers (it blends layers a and a+1)")
    if not 1 <= k <= n_student:
        raise ValueError(f"k must be a student layer in 1..{n_student}, got {k}")
    u = Fraction(n_teacher * k, n_student)
    a = max(1, min(math.floor(u), n_teacher - 1))
    lam = min(max(u - a, Fraction(0)), Fraction(1))
    return a, a + 1, float(lam)


def seeking_top_layers(teacher_scores: Sequence[float], n_student: int) -> list[int]:
    """Seeking's selection: the top-L_S teacher layers by score (ties -> lower index), sorted by index.

    The i-th returned teacher layer maps to student layer i (order-preserving).
    """
    values = check_scores(teacher_scores, "teacher")
    _check_depths(len(values), n_student)
    if n_student > len(values):
        raise ValueError(
            f"Seeking keeps L_S={n_student} of L_T={len(values)} teacher layers; needs L_S <= L_T"
        )
    ranked = sorted(range(len(values)), key=lambda i: (-values[i], i))
    return sorted(i + 1 for i in ranked[:n_student])


LAYER_INDEX_BASE = 1  # written into every pairing / importance file


def to_module_index(layers: int | Sequence[int], n_layers: int) -> list[int]:
    """1-indexed layer numbers (papers, pairing files) -> 0-indexed module positions (peft, ``layers[i]``).

    The one conversion between the two conventions; a number outside 1..n_layers is an error naming it.
    """
    numbers = [layers] if isinstance(layers, int) else list(layers)
    bad = [k for k in numbers if not isinstance(k, int) or not 1 <= k <= n_layers]
    if bad:
        raise ValueError(f"layer numbers {bad} are not in 1..{n_layers} (pairing files are 1-indexed)")
    return [k - LAYER_INDEX_BASE for k in numbers]


def pair_layers(
    teacher_scores: Sequence[float],
    student_scores: Sequence[float],
    interpolate: bool = True,
    critical: str = "teacher_max",
) -> dict[str, Any]:
    """Every pairing decision, with the rule and reason, as a JSON-serialisable dict.

    ``teacher_scores``/``student_scores``: one importance per layer (index 0 = layer 1); their lengths
    define L_T and L_S. Student scores are not used by SemAlign's rule; they are recorded (and plotted)
    so that the student's own most important layer can be compared with the chosen k†.
    """
    t = check_scores(teacher_scores, "teacher")
    s = check_scores(student_scores, "student")
    n_t, n_s = len(t), len(s)
    lmap = depth_map(n_t, n_s)
    ratio = Fraction(n_t, n_s)
    l_star = critical_teacher_layer(t, critical)
    k_dag = critical_student_layer(l_star, n_t, n_s)
    partner = lmap[k_dag - 1]
    in_map = l_star in lmap
    seeking = seeking_top_layers(t, n_s) if n_s <= n_t else None
    interp, interp_reason = _interpolation_record(n_t, n_s, k_dag, interpolate, ratio)
    return {
        "layer_index_base": LAYER_INDEX_BASE,
        "n_teacher": n_t,
        "n_student": n_s,
        "ratio": {"value": float(ratio), "exact": str(ratio), "integral": ratio.denominator == 1},
        "depth_map": [{"student": k, "teacher": lt} for k, lt in enumerate(lmap, start=1)],
        "depth_map_rule": "l_T(k) = max(1, floor(L_T / L_S * k)), k = 1..L_S (SemAlign 4.1)",
        "skipped_teacher_layers": [lt for lt in range(1, n_t + 1) if lt not in lmap],
        "l_star": {
            "layer": l_star,
            "score": t[l_star - 1],
            "rule": critical,
            "why": _l_star_reason(critical),
            "in_depth_map": in_map,
        },
        "k_dagger": {
            "layer": k_dag,
            "rule": "k_dagger = min{k : l_T(k) >= l_star}, default L_S",
            "why": (
                f"l_T({k_dag}) = {partner} is the first partner >= l_star = {l_star}"
                + ("" if in_map else f" (teacher layer {l_star} is skipped by the depth map)")
            ),
        },
        "pair": {"teacher": partner, "student": k_dag},
        "interpolation": interp,
        "interpolation_reason": interp_reason,
        "seeking": {
            "teacher_layers": seeking,
            "map": [{"student": i, "teacher": lt} for i, lt in enumerate(seeking or [], start=1)],
            "rule": "top-L_S teacher layers by score (ties -> lower index), re-sorted by index; "
            "i-th kept layer -> student layer i (Seeking 1.3)"
            + ("" if seeking is not None else f"; undefined: the student is deeper ({n_s} > {n_t} layers)"),
        },
        "student_max_layer": s.index(max(s)) + 1,
        "scores": {"teacher": t, "student": s},
    }


def _l_star_reason(rule: str) -> str:
    what = "|score|" if rule == "teacher_max_abs" else "score"
    return f"teacher layer with the highest {what}; ties go to the lowest layer index"


def _interpolation_record(
    n_t: int, n_s: int, k: int, enabled: bool, ratio: Fraction
) -> tuple[dict[str, Any] | None, str]:
    """The interpolation entry at k† (or None) and why it was or was not applied."""
    if not enabled:
        return None, "disabled"
    if ratio.denominator == 1:
        return None, f"depth ratio L_T/L_S = {ratio} is integral: l_T(k) is an exact teacher layer"
    a, b, lam = interpolation(n_t, n_s, k)
    u = Fraction(n_t * k, n_s)
    record = {"k": k, "u": float(u), "u_exact": str(u), "a": a, "b": b, "lambda": lam}
    why = f"non-integral ratio {ratio}: target = (1 - lambda) * h_T^(a) + lambda * h_T^(b), u = L_T*k/L_S"
    return record, why
