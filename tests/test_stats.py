"""Paired bootstrap against answers known in advance."""

from __future__ import annotations

import numpy as np
import pytest

from pkt.report.stats import paired_bootstrap


def bernoulli(p: float, seeds: int, items: int, rng_seed: int) -> np.ndarray:
    return (np.random.default_rng(rng_seed).random((seeds, items)) < p).astype(float)


def test_known_difference_is_covered_and_zero_excluded():
    a, b = bernoulli(0.7, 3, 400, 1), bernoulli(0.5, 3, 400, 2)
    res = paired_bootstrap(a, b)
    assert res["diff"] == pytest.approx(a.mean(axis=1).mean() - b.mean(axis=1).mean(), abs=1e-12)
    assert res["lo"] < 0.2 < res["hi"]
    assert res["lo"] > 0
    assert res["lo"] < res["diff"] < res["hi"]
    assert (res["n_items"], res["seeds_a"], res["seeds_b"], res["n_boot"]) == (400, 3, 3, 10000)


def test_same_distribution_covers_zero():
    a, b = bernoulli(0.6, 3, 400, 3), bernoulli(0.6, 3, 400, 4)
    res = paired_bootstrap(a, b)
    assert res["lo"] < 0 < res["hi"]


def test_identical_rows_give_a_zero_width_interval_at_zero():
    a = bernoulli(0.5, 3, 100, 5)
    res = paired_bootstrap(a, a.copy(), n_boot=500)
    assert res["diff"] == res["lo"] == res["hi"] == 0.0


def test_deterministic_for_a_fixed_seed():
    a, b = bernoulli(0.6, 3, 200, 6), bernoulli(0.5, 3, 200, 7)
    assert paired_bootstrap(a, b, n_boot=2000, seed=3) == paired_bootstrap(a, b, n_boot=2000, seed=3)
    assert paired_bootstrap(a, b, n_boot=2000, seed=3) != paired_bootstrap(a, b, n_boot=2000, seed=4)


def test_one_seed_against_three_is_unpaired_over_seeds():
    a = np.full((1, 50), 0.5)  # a deterministic model, scored once
    b = np.repeat([[0.0], [0.5], [1.0]], 50, axis=1)  # three seeds that disagree wholesale
    res = paired_bootstrap(a, b, n_boot=2000)
    assert (res["seeds_a"], res["seeds_b"]) == (1, 3)
    assert res["diff"] == pytest.approx(0.0)
    assert res["lo"] < -0.1 and res["hi"] > 0.1  # only b's seed resampling can make the interval this wide
    with pytest.raises(ValueError, match="seed counts differ"):
        paired_bootstrap(a, b, pair_seeds=True)


def test_equal_seed_counts_are_paired_by_seed_index():
    b = np.repeat([[0.0], [0.5], [1.0]], 50, axis=1)
    a = b + 0.1  # every seed of a is its namesake in b plus 0.1
    paired = paired_bootstrap(a, b, n_boot=2000)
    assert paired["lo"] == pytest.approx(0.1) and paired["hi"] == pytest.approx(0.1)
    unpaired = paired_bootstrap(a, b, n_boot=2000, pair_seeds=False)
    assert unpaired["hi"] - unpaired["lo"] > 0.5


def test_mismatched_item_counts_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3, 400\) and \(3, 399\)"):
        paired_bootstrap(np.zeros((3, 400)), np.zeros((3, 399)))


def test_interval_width_shrinks_as_one_over_sqrt_items():
    def width(items: int) -> float:
        res = paired_bootstrap(bernoulli(0.6, 3, items, 8), bernoulli(0.5, 3, items, 9), n_boot=4000)
        return res["hi"] - res["lo"]

    assert width(1600) / width(400) == pytest.approx(0.5, abs=0.1)
