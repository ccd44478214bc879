"""Uncertainty of a difference between two rows of the comparison table (numpy only).

A table cell is a mean over test items (and over seeds); whether "method X beats LoRA by 3 points" is
more than noise depends on how many items there are, how they cluster and how much the seeds disagree.
Both rows were scored on the same items, so every interval here is paired over items: the item-difficulty
variance that the two rows share cancels.

:func:`paired_interval` is the tables' interval. Its seed part is a t-type interval over the seeds (a
seed's mean is known only through seeds - 1 degrees of freedom: 2 with 3 seeds), its item part a bootstrap
variance over test items, resampled by cluster when items share a template. :func:`paired_bootstrap` is
the percentile bootstrap the tables used before; with 3 seeds its seed resampling spans only the min..max
of three seed means, so its 95% interval covers 78% at a seed SD of 0.5 logit
(``benchmarks/interval_coverage.py`` prints both side by side).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

_CHUNK = 1000  # replicates per vectorised block: memory ~ seeds x _CHUNK x items floats per side


def _scores(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a float array [seeds, items] (a 1-D array is one seed); reject empty or non-finite input."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty [seeds, items] array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds non-finite scores")
    return arr


def _pair(a: ArrayLike, b: ArrayLike, n_boot: int, level: float, pair_seeds: bool | None,
          min_boot: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both rows as [seeds, items] arrays over the same items, the settings checked, and whether seeds pair
    (by default: when the seed counts are equal)."""
    a, b = _scores(a, "a"), _scores(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must score the same items: shapes {a.shape} and {b.shape} differ in items")
    if n_boot < min_boot or not 0.0 < level < 1.0:
        raise ValueError(f"need n_boot >= {min_boot} and 0 < level < 1, got n_boot={n_boot}, level={level}")
    if pair_seeds is None:
        pair_seeds = a.shape[0] == b.shape[0]
    elif pair_seeds and a.shape[0] != b.shape[0]:
        raise ValueError(f"cannot pair seeds of shapes {a.shape} and {b.shape}: seed counts differ")
    return a, b, pair_seeds


def _seed_means(m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-seed means ``m`` [seeds, chunk] -> [chunk]: each replicate averages seeds drawn with replacement."""
    n_seeds, chunk = m.shape
    seed_idx = rng.integers(0, n_seeds, size=(chunk, n_seeds))
    return m.T[np.arange(chunk)[:, None], seed_idx].mean(axis=1)


def paired_bootstrap(a: ArrayLike, b: ArrayLike, n_boot: int = 10000, level: float = 0.95, seed: int = 0,
                     pair_seeds: bool | None = None) -> dict[str, float | int]:
    """Percentile bootstrap interval of ``mean(a) - mean(b)``: the tables' interval before
    :func:`paired_interval`, kept to measure it against (``benchmarks/interval_coverage.py``).

    ``a`` is [seeds_a, items] (one row of the table: a method's scores per seed and test item), ``b``
    [seeds_b, items] (the reference row) with the same items in the same order. The point estimate is
    the mean over seeds of the mean over items of ``a`` minus the same for ``b``.

    Each replicate draws item indices with replacement and uses the SAME indices for both sides (paired
    over items), and draws seeds with replacement: with the same seed indices for both sides when
    ``pair_seeds`` (by default: when the seed counts are equal; seed k of two methods shares data order
    and initialisation), independently per side otherwise (e.g. a deterministic model scored once
    against three training seeds). The interval is the percentile interval at ``level``.

    Replicates are computed in vectorised blocks of integer index arrays, so memory stays small, and
    the result is a deterministic function of ``seed``. Scores are usually fractions (0/1 per item);
    the difference comes back in the same unit.

    Returns ``{"diff", "lo", "hi", "n_items", "seeds_a", "seeds_b", "n_boot"}``.
    """
    a, b, pair_seeds = _pair(a, b, n_boot, level, pair_seeds, min_boot=1)

    rng = np.random.default_rng(seed)
    n_items = a.shape[1]
    # Paired over seeds, the replicate of a - b is the replicate of the per-item difference (exactly
    # 0 for identical rows); unpaired, each side is resampled on its own and the two are subtracted.
    sides = [a - b] if pair_seeds else [a, b]
    reps = np.empty(n_boot)
    for start in range(0, n_boot, _CHUNK):
        chunk = min(_CHUNK, n_boot - start)
        item_idx = rng.integers(0, n_items, size=(chunk, n_items))
        means = [_seed_means(x[:, item_idx].mean(axis=2), rng) for x in sides]  # x[:, idx]: [seeds, chunk, items]
        reps[start:start + chunk] = means[0] if pair_seeds else means[0] - means[1]

    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [tail, 1.0 - tail])
    return {"diff": float(a.mean() - b.mean()), "lo": float(lo), "hi": float(hi), "n_items": int(n_items),
            "seeds_a": int(a.shape[0]), "seeds_b": int(b.shape[0]), "n_boot": int(n_boot)}


# --- the tables' interval: a t-type seed part and a (cluster) bootstrap item part --------------------------

_GRID = 400  # quadrature nodes of one seed part's chi-square; _GRID_2D per side when two sides mix
_GRID_2D = 160
_erf = np.frompyfunc(math.erf, 1, 1)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(float))


@lru_cache(maxsize=256)
def _chi2_nodes(df: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes y and weights (summing to 1) of the distribution of chi2_df / df: the trapezoid rule in log y over
    the range that holds all but ~1e-13 of it (the integrand is smooth there, so the rule converges fast)."""
    spread = math.sqrt(2.0 / df)
    u = np.linspace(math.log(max(1e-16, 1.0 - 10.0 * spread)), math.log(1.0 + 10.0 * spread + 40.0 / df), size)
    half = df / 2.0
    weights = np.exp(half * math.log(half) - math.lgamma(half) + half * u - half * np.exp(u))  # density of log y
    weights[[0, -1]] *= 0.5
    return np.exp(u), weights / weights.sum()


def mixture_half_width(known: float, seed_parts: Sequence[tuple[float, int]], level: float) -> float:
    """Half-width h of the interval ``+-h`` that holds ``level`` of N(0, known + sum_r theta_r), averaged over
    theta_r = x_r / (chi2_{df_r} / df_r), independent: a variance ``x_r`` estimated with ``df_r`` degrees of
    freedom enters with its uncertainty (the fiducial distribution of a normal variance).

    With ``known = 0`` and one part ``(x, df)`` this is Student's t quantile times sqrt(x); with no parts it is
    the normal quantile times sqrt(known). Between the two it is exact where the Welch-Satterthwaite degrees of
    freedom are not: with 2 degrees of freedom a plug-in Satterthwaite df grows exactly when the seed variance
    came out small, and the interval undercovers. Solved by Newton's method, which rises monotonically to the
    root from below (the coverage is concave in h).
    """
    parts = [(float(x), int(df)) for x, df in seed_parts if x > 0]
    if known <= 0 and not parts:
        return 0.0
    size = _GRID if len(parts) <= 1 else _GRID_2D
    var, weight = np.array([float(known)]), np.array([1.0])
    for x, df in parts:
        y, w = _chi2_nodes(df, size)
        var = (var[:, None] + x / y[None, :]).ravel()
        weight = (weight[:, None] * w[None, :]).ravel()
    sd = np.sqrt(var)
    h = NormalDist().inv_cdf((1.0 + level) / 2.0) * float(sd.min())  # below the root: every sd is >= sd.min()
    for _ in range(200):
        below = float(weight @ (2.0 * _normal_cdf(h / sd) - 1.0)) - level
        slope = float(weight @ (2.0 * np.exp(-0.5 * (h / sd) ** 2) / (math.sqrt(2.0 * math.pi) * sd)))
        step = below / slope
        h -= step
        if abs(step) <= 1e-13 * h:
            break
    return float(h)


@lru_cache(maxsize=1024)
def t_quantile(df: int, level: float) -> float:
    """Two-sided Student t quantile: P(|T_df| <= t) = level (``mixture_half_width`` with one unit part)."""
    return mixture_half_width(0.0, [(1.0, df)], level)


def _units(clusters: Sequence[Hashable | None] | None, n_items: int) -> tuple[np.ndarray, int]:
    """Unit index per item and the unit count: items with one cluster label form one unit, an item without a
    label (None or NaN) is a unit of its own; without labels every item is its own unit."""
    if clusters is None:
        return np.arange(n_items), n_items
    labels = list(clusters)
    if len(labels) != n_items:
        raise ValueError(f"clusters has {len(labels)} labels for {n_items} items")
    keys: dict[tuple[bool, Hashable], int] = {}
    unit = [keys.setdefault((True, c) if c is not None and c == c else (False, i), len(keys))  # NaN != NaN
            for i, c in enumerate(labels)]
    return np.asarray(unit), len(keys)


def _bootstrap_var(x: np.ndarray, unit: np.ndarray, n_units: int, n_boot: int, rng: np.random.Generator) -> float:
    """Variance of the mean of ``x`` [items] over bootstrap replicates that draw units (clusters) with
    replacement, each with all its items, times K / (K - 1) (the plug-in variance is that much too small)."""
    totals = np.bincount(unit, weights=x, minlength=n_units)
    sizes = np.bincount(unit, minlength=n_units).astype(float)
    reps = np.empty(n_boot)
    for start in range(0, n_boot, _CHUNK):
        chunk = min(_CHUNK, n_boot - start)
        idx = rng.integers(0, n_units, size=(chunk, n_units))
        reps[start:start + chunk] = totals[idx].sum(axis=1) / sizes[idx].sum(axis=1)
    return float(reps.var(ddof=1)) * n_units / (n_units - 1)


def _within_var(m: np.ndarray, unit: np.ndarray, n_units: int) -> float:
    """The variance of one seed's item mean that comes from seed-by-item noise, from the two-way (seed x item)
    residuals summed per unit: what the seed means would scatter by if the seeds themselves did not differ."""
    n_seeds, n_items = m.shape
    resid = m - m.mean(axis=0) - m.mean(axis=1, keepdims=True) + m.mean()
    per_unit = np.bincount((unit + n_units * np.arange(n_seeds)[:, None]).ravel(), weights=resid.ravel(),
                           minlength=n_seeds * n_units)
    return float((per_unit**2).sum()) / (n_items**2 * (n_seeds - 1)) * n_units / (n_units - 1)


def paired_interval(a: ArrayLike, b: ArrayLike, clusters: Sequence[Hashable | None] | None = None,
                    n_boot: int = 10000, level: float = 0.95, seed: int = 0,
                    pair_seeds: bool | None = None) -> dict[str, float | int | str]:
    """Interval of ``mean(a) - mean(b)`` for per-item scores of two rows on the same items, honest at 3 seeds.

    ``a`` is [seeds_a, items] (a row of the table: a method's scores per seed and test item), ``b``
    [seeds_b, items] (the reference row), same items in the same order; ``clusters`` labels the items
    that share a template (None: every item on its own). Seeds are paired (seed k of both rows) when
    ``pair_seeds`` (default: equal seed counts), independent sides otherwise (a deterministic model scored
    once against three training seeds).

    Model: the paired difference on seed s and item i is d_si = mu + u_i + v_s + w_si (u: item effects,
    correlated within a cluster; v: the seed's effect; w: seed-by-item noise). The estimate D = mean d_si has

        Var D = Var(mean u) + Var(v_s + mean_i w_si) / S = items + seeds.

    * seeds: X = var_s(mean_i d_si) / S, an estimate with S - 1 degrees of freedom;
    * items: the bootstrap variance of the mean of the seed-averaged differences mean_s d_si, resampling
      clusters (all items of a drawn cluster) or items, times K / (K - 1) for K units, holds
      Var(mean u) + W / S, where W = Var(mean_i w_si) comes from the two-way residuals (``_within_var``);
      it is subtracted, since X holds it already: items = max(boot - W / S, 0).

    The interval is D +- h, h from ``mixture_half_width(items * (t_{K-1} / z)^2, [(X, S - 1)], level)``: the
    normal interval averaged over the uncertainty of X, i.e. t_{S-1} * sqrt(X) when seeds dominate and
    t_{K-1} * sqrt(items) when they agree; and h is at least t_{K-1} * sqrt(boot), the interval with the seeds
    held fixed, since seed means can agree more closely by chance than their item noise allows. Unpaired, the
    item part is that of mean_s a - mean_s b and each side with 2+ seeds adds its own (X_r, S_r - 1). A side
    with one seed adds no seed part ("items only" when neither has two): right for a deterministic model, an
    understatement for a single training seed.
    Deterministic given ``seed`` (the item bootstrap's generator); identical rows give exactly [0, 0].

    Returns ``{"diff", "lo", "hi", "se_items", "se_seeds", "n_items", "n_units", "seeds_a", "seeds_b",
    "seed_part", "n_boot"}``: ``se_items`` = sqrt(items), ``se_seeds`` = sqrt(sum X), ``n_units`` the
    clusters (or items) resampled, ``seed_part`` which side's seeds enter: "paired", "a", "b", "both", "none".
    """
    a, b, pair_seeds = _pair(a, b, n_boot, level, pair_seeds, min_boot=2)
    n_items = a.shape[1]
    unit, n_units = _units(clusters, n_items)
    if n_units < 2:
        raise ValueError(f"{n_items} item(s) in {n_units} cluster: at least two are needed for an interval")

    named = {"paired": a - b} if pair_seeds else {"a": a, "b": b}
    seeded = {name: m for name, m in named.items() if m.shape[0] >= 2}
    x = a.mean(axis=0) - b.mean(axis=0)  # seed-averaged paired differences per item
    boot = _bootstrap_var(x, unit, n_units, n_boot, np.random.default_rng(seed))
    within = sum(_within_var(m, unit, n_units) / m.shape[0] for m in seeded.values())
    items = max(boot - within, 0.0)
    seed_parts = [(float(m.mean(axis=1).var(ddof=1)) / m.shape[0], m.shape[0] - 1) for m in seeded.values()]
    t_items = t_quantile(n_units - 1, level)
    inflate = (t_items / NormalDist().inv_cdf((1.0 + level) / 2.0)) ** 2
    # Never narrower than the interval with the seeds held fixed (items alone, within-seed noise included):
    # three seed means can agree more closely than their own item noise allows, by chance.
    half = max(mixture_half_width(items * inflate, seed_parts, level), t_items * math.sqrt(boot))
    diff = float(a.mean() - b.mean())
    return {"diff": diff, "lo": diff - half, "hi": diff + half, "se_items": math.sqrt(items),
            "se_seeds": math.sqrt(sum(v for v, _ in seed_parts)), "n_items": int(n_items), "n_units": int(n_units),
            "seeds_a": int(a.shape[0]), "seeds_b": int(b.shape[0]),
            "seed_part": "both" if len(seeded) == 2 else next(iter(seeded), "none"), "n_boot": int(n_boot)}
