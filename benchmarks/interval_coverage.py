"""Coverage of the vs-reference table's 95% interval in simulation: the old percentile bootstrap against
``pkt.report.stats.paired_interval``, side by side.

Each simulated table is one cell of the toy table: 420 test items scored 0/1, a method row and the reference
row with 3 training seeds each, paired by seed (or, with ``--unpaired``, a deterministic row scored once
against the reference's 3 seeds, as Student vs LoRA). Item i of row r on seed s is right with probability

    logistic(alpha + delta_r + b_i + g_ri + c_k + h_rk + v_rs)

b_i: item difficulty shared by both rows (SD 1.5); g_ri: the row's own item effect (SD 1.0); with clusters
(60 of 7 items, as templates) c_k shared (SD 1.0) and h_rk the row's own cluster effect (SD 0.8); v_rs: the
seed's effect, SD 0 / 0.15 / 0.25 / 0.5 logit; delta = 0.2 for the method, 0 for the reference. The known
difference is E logistic(alpha + 0.2 + tau Z) - E logistic(alpha + tau Z) over every draw, tau^2 the sum of
the variances (Gauss-Hermite): the interval should cover it in 95% of tables, and at least 93% here.

    python benchmarks/interval_coverage.py [--tables 1000] [--boot 1000] [--unpaired]

Each coverage is a fraction of ``--tables`` tables: its Monte Carlo SE is about 0.7 points at 1000.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pkt.report.stats import paired_bootstrap, paired_interval

ITEMS, SEEDS, CLUSTERS = 420, 3, 60
ALPHA, DELTA = -0.5, 0.2
SD = {"item": 1.5, "row_item": 1.0, "cluster": 1.0, "row_cluster": 0.8}
SEED_SDS = (0.0, 0.15, 0.25, 0.5)


def known_difference(seed_sd: float, clustered: bool, deterministic_row: bool = False) -> float:
    """E over every random effect of P(method right) - P(reference right); a deterministic row has no seed
    effect, so its logit varies less than the reference's."""
    var = SD["item"] ** 2 + SD["row_item"] ** 2
    var += SD["cluster"] ** 2 + SD["row_cluster"] ** 2 if clustered else 0.0
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    weights = weights / weights.sum()
    method = 1 / (1 + np.exp(-(ALPHA + DELTA + np.sqrt(var + (0.0 if deterministic_row else seed_sd**2)) * nodes)))
    reference = 1 / (1 + np.exp(-(ALPHA + np.sqrt(var + seed_sd**2) * nodes)))
    return float(weights @ (method - reference))


def simulate(rng: np.random.Generator, seed_sd: float, clustered: bool, seeds_a: int = SEEDS
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One table cell: the method's scores [seeds_a, items], the reference's [SEEDS, items], cluster labels.
    A row with one seed is deterministic (no seed effect), like the vanilla Student."""
    shared = rng.normal(0, SD["item"], ITEMS)
    labels = np.repeat(np.arange(CLUSTERS), ITEMS // CLUSTERS) if clustered else None
    if clustered:
        shared = shared + rng.normal(0, SD["cluster"], CLUSTERS)[labels]

    def row(delta: float, n_seeds: int) -> np.ndarray:
        logit = ALPHA + delta + shared + rng.normal(0, SD["row_item"], ITEMS)
        if clustered:
            logit = logit + rng.normal(0, SD["row_cluster"], CLUSTERS)[labels]
        effect = rng.normal(0, seed_sd, (n_seeds, 1)) if n_seeds > 1 else np.zeros((1, 1))
        return (rng.random((n_seeds, ITEMS)) < 1 / (1 + np.exp(-(logit + effect)))).astype(float)

    return row(DELTA, seeds_a), row(0.0, SEEDS), labels


def coverage(seed_sd: float, clustered: bool, tables: int, n_boot: int, methods: tuple[str, ...] = ("old", "new"),
             seeds_a: int = SEEDS, rng_seed: int = 0) -> dict[str, tuple[float, float]]:
    """{method: (coverage, mean width in points)} over ``tables`` simulated tables (deterministic given rng_seed).
    The old interval ignores clusters, as the tables did; the new one is given them."""
    truth = known_difference(seed_sd, clustered, deterministic_row=seeds_a == 1)
    rng = np.random.default_rng(rng_seed)
    hits = {m: 0 for m in methods}
    widths = {m: 0.0 for m in methods}
    for t in range(tables):
        a, b, labels = simulate(rng, seed_sd, clustered, seeds_a)
        for m in methods:
            res = (paired_bootstrap(a, b, n_boot=n_boot, seed=t) if m == "old"
                   else paired_interval(a, b, clusters=labels, n_boot=n_boot, seed=t))
            hits[m] += res["lo"] <= truth <= res["hi"]
            widths[m] += 100 * (res["hi"] - res["lo"])
    return {m: (hits[m] / tables, widths[m] / tables) for m in methods}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000, help="simulated tables per setting")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap replicates per interval")
    parser.add_argument("--unpaired", action="store_true", help="also a one-seed deterministic row vs 3 seeds")
    args = parser.parse_args()
    layouts = [("3 vs 3 seeds, paired", SEEDS)] + ([("1 (deterministic) vs 3 seeds", 1)] if args.unpaired else [])
    print(f"{ITEMS} items (0/1), 95% intervals, {args.tables} tables per setting, {args.boot} bootstrap replicates;"
          f" clustered = {CLUSTERS} clusters of {ITEMS // CLUSTERS} items")
    print(f"{'layout':<30} {'items':<10} {'seed SD':>7}  {'old cover':>9} {'old width':>9}  "
          f"{'new cover':>9} {'new width':>9}")
    for label, seeds_a in layouts:
        for clustered in (False, True):
            for seed_sd in SEED_SDS:
                start = time.perf_counter()
                found = coverage(seed_sd, clustered, args.tables, args.boot, seeds_a=seeds_a)
                (old, old_w), (new, new_w) = found["old"], found["new"]
                print(f"{label:<30} {'clustered' if clustered else 'iid':<10} {seed_sd:>7.2f}  {100 * old:>8.1f}% "
                      f"{old_w:>9.2f}  {100 * new:>8.1f}% {new_w:>9.2f}   ({time.perf_counter() - start:.0f}s)",
                      flush=True)


if __name__ == "__main__":
    main()
