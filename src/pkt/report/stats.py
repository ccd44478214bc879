"""Uncertainty of a difference between two rows of the comparison table (numpy only).

A table cell is a mean over test items (and over seeds); whether "method X beats LoRA by 3 points" is
more than noise depends on how many items there are and how much the seeds disagree. The paired
bootstrap answers that without distributional assumptions: both rows were scored on the same items,
so resampling the same item indices on both sides cancels the item-difficulty variance that the two
rows share, and resampling seeds adds the run-to-run variance of training.
"""

from __future__ import annotations

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


def _seed_means(m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-seed means ``m`` [seeds, chunk] -> [chunk]: each replicate averages seeds drawn with replacement."""
    n_seeds, chunk = m.shape
    seed_idx = rng.integers(0, n_seeds, size=(chunk, n_seeds))
    return m.T[np.arange(chunk)[:, None], seed_idx].mean(axis=1)


def paired_bootstrap(a: ArrayLike, b: ArrayLike, n_boot: int = 10000, level: float = 0.95, seed: int = 0,
                     pair_seeds: bool | None = None) -> dict[str, float | int]:
    """Bootstrap interval of ``mean(a) - mean(b)`` for per-item scores of two rows on the same items.

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
    a, b = _scores(a, "a"), _scores(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must score the same items: shapes {a.shape} and {b.shape} differ in items")
    if n_boot < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need n_boot >= 1 and 0 < level < 1, got n_boot={n_boot}, level={level}")
    if pair_seeds is None:
        pair_seeds = a.shape[0] == b.shape[0]
    elif pair_seeds and a.shape[0] != b.shape[0]:
        raise ValueError(f"cannot pair seeds of shapes {a.shape} and {b.shape}: seed counts differ")

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
