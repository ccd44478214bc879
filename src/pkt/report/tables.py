"""Comparison tables in the layout of the papers' Table 1 (pandas).

Rows: Student, Teacher (the vanilla models), then LoRA and each transfer method that has run;
columns: the four benchmarks (MMLU followed by its held-out and control subsets where the eval has
them), the average, and the gap to the teacher (SemAlign's "average gap": the mean over benchmarks of
|teacher - row|); average and gap are over the four benchmarks only. A task besides those four gets a column
of its own after them, named by the task (``pkt.report.columns``), and the caption says so. Scores are
percentages, mean +- std over seeds. Methods that have not run are absent, never filled in.

A second table gives every row minus a reference row (LoRA) with an interval over test items and
training seeds (``vs_reference``, ``pkt.report.stats.paired_interval``), from the per-item scores each eval
JSON carries. A row that scores every item exactly as an earlier row does (``identical_rows``: LaTen whose
update leaves the student as it is) is marked in both tables, since its cells are that row's.

How the tables are shown and written (row and column labels from ``describe_results``, cells, notes, files) is
``pkt.report.shown``'s, re-exported here; every file goes through ``pkt.report.latex.write_table``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pkt.report.columns import (  # noqa: F401 - benchmark_of: re-exported
    BENCHMARKS,
    benchmark_of,
    column_of,
    extra_columns,
    extras_note,
    score_columns,
    subset_column,
    task_columns,
)
from pkt.report.shown import (  # noqa: F401 - the tables' presentation, re-exported for its callers
    COVERS,
    MARK,
    ROWS,
    VANILLA,
    ResultsInfo,
    flat_metrics,
    formatted,
    identical_note,
    interval,
    latex_caption,
    mark_identical,
    row_label,
    vs_note,
    write_tables,
    write_vs_reference,
)
from pkt.report.stats import paired_interval

log = logging.getLogger(__name__)


def code_path(result: dict[str, Any]) -> str:
    """The CPU code path a result was made on (instruction set and pins, of its evaluation and of its toy
    model's pretraining: pkt.runtime.cpu_provenance); "gpu" where neither ran on the CPU, "unrecorded" for a
    result older than the record."""
    if "cpu" not in result:
        return "unrecorded"
    seen = [c for c in (result["cpu"], result.get("model", {}).get("cpu")) if c]
    return "; ".join(sorted({f"{c['capability']} {json.dumps(c['pins'], sort_keys=True)}" for c in seen})) or "gpu"


def _results(paths: Iterable[str | os.PathLike[str]],
             pairs: dict[str, dict[str, str]]) -> Iterator[tuple[dict[str, Any], str, list[tuple[str, str]]]]:
    """Each eval JSON with its column (``pkt.report.columns.column_of``: a benchmark, or the task's own) and the
    (pair, row) cells it fills: a vanilla result names a model in the pair slot and is the student or teacher
    row of every pair that model belongs to."""
    tasks: dict[str, str] = {}
    paths_by_pins: dict[str, str] = {}
    for path in paths:
        r = json.loads(Path(path).read_text())
        paths_by_pins.setdefault(code_path(r), str(path))
        if len(paths_by_pins) > 1:
            (one, a), (other, b) = list(paths_by_pins.items())[:2]
            raise ValueError(f"results made on different CPU code paths would share a table: {a} ({one}) and {b} "
                             f"({other}); rerun them under one reproducible_cpu setting (pkt.runtime.CPU_PINS)")
        bench = column_of(r["task"])
        if tasks.setdefault(bench, r["task"]) != r["task"]:
            raise ValueError(f"tasks {tasks[bench]!r} and {r['task']!r} both fill the {bench} column ({path}): "
                             "a table holds one task per benchmark; put the other in a run of its own")
        if r["method"] == "vanilla":
            roles = ("student", "teacher")
            targets = [(p, role) for p, spec in pairs.items() for role in roles if spec[role] == r["pair"]]
        else:
            targets = [(r["pair"], r["method"])]
        yield r, bench, targets


def load_results(paths: Iterable[str | os.PathLike[str]], pairs: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Eval JSONs -> a tidy frame: pair, row (Student/Teacher/method), benchmark, seed, score (%), n.

    A result with ``subsets`` (toy_mmlu: held-out and control facts) also gives one row per subset,
    as the extra benchmarks 'MMLU held-out' and 'MMLU control'.
    """
    records = []
    for r, bench, targets in _results(paths, pairs):
        scores = [(bench, r["value"], r["n"])]
        scores += [(subset_column(bench, g), s["value"], s["n"])
                   for g, s in (r.get("subsets") or {}).items() if s and s.get("n")]
        records += [{"pair": pair, "row": key, "benchmark": b, "seed": r["seed"], "score": 100.0 * v, "n": n}
                    for pair, key in targets for b, v, n in scores]
    df = pd.DataFrame.from_records(records, columns=["pair", "row", "benchmark", "seed", "score", "n"])
    return df.sort_values(["pair", "row", "benchmark", "seed"], ignore_index=True)


def describe_results(paths: Iterable[str | os.PathLike[str]], pairs: dict[str, dict[str, str]]) -> ResultsInfo:
    """What the eval JSONs say besides their scores (:class:`pkt.report.shown.ResultsInfo`), for the tables' labels:
    the model of each pair's vanilla rows (its hub repo id, else its config name: the result's, or the pair's where
    no result records one; a method's result names its student), each column's metric and item counts (a
    subset's own n), and under which prompt protocol each pair's columns were evaluated."""
    from pkt.evaluation.tasks import PROTOCOLS  # protocol name -> label; here: only the table scripts need it

    models = {(pair, role): spec[role] for pair, spec in pairs.items() for role in VANILLA}
    metrics: dict[str, dict[str, None]] = {}
    sizes: dict[str, set[int]] = {}
    protocols: dict[str, dict[str, dict[str, None]]] = {}
    hub: set[tuple[str, str]] = set()  # named by a repo id: no result's config name replaces it
    for r, bench, targets in _results(paths, pairs):
        model = r.get("model") or {}
        name = model.get("repo_id") or model.get("name")
        for key in ((pair, row if row in VANILLA else "student") for pair, row in targets if name):
            if key not in hub:
                models[key] = name
                hub.update([key] if model.get("repo_id") else [])
        counts = [(bench, r.get("n"))] + [(subset_column(bench, g), s.get("n"))
                                          for g, s in (r.get("subsets") or {}).items() if s]
        for column, n in counts:
            if r.get("metric"):
                metrics.setdefault(column, {})[str(r["metric"])] = None
            if n:
                sizes.setdefault(column, set()).add(int(n))
        if r.get("protocol"):
            label = PROTOCOLS.get(r["protocol"], r["protocol"])
            for pair, _ in targets:
                protocols.setdefault(pair, {}).setdefault(label, {})[bench] = None
    return ResultsInfo(models=models, metrics={c: tuple(m) for c, m in metrics.items()},
                       sizes={c: tuple(sorted(n)) for c, n in sizes.items()},
                       protocols={p: {k: tuple(cols) for k, cols in used.items()} for p, used in protocols.items()})


def load_items(paths: Iterable[str | os.PathLike[str]], pairs: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Eval JSONs -> per-item scores: pair, row, benchmark, seed, id, score (%), cluster, for the intervals.

    Items of a group (toy_mmlu's held_out/control) also appear under their subset benchmark. ``cluster`` is
    the item's template or entity where items share one (toy tasks), else None (its own cluster; also for
    results written before evals recorded it). Results written before evaluation kept per-item scores (no
    ``items`` key) are skipped with a warning.
    """
    columns = ["pair", "row", "benchmark", "seed", "id", "score", "cluster"]
    frames, skipped = [], 0
    for r, bench, targets in _results(paths, pairs):
        if not r.get("items"):
            skipped += 1
            continue
        it = r["items"]
        missing = [None] * len(it["id"])
        items = pd.DataFrame({"id": it["id"], "score": it["score"], "group": it.get("group") or missing,
                              "cluster": pd.Series(it.get("cluster") or missing, dtype=object)})
        grouped = items[items["group"].notna()]
        parts = [items.assign(benchmark=bench)]
        parts += [g.assign(benchmark=subset_column(bench, name)) for name, g in grouped.groupby("group", sort=False)]
        scored = pd.concat(parts, ignore_index=True).assign(seed=r["seed"], score=lambda d: 100.0 * d["score"])
        frames += [scored.assign(pair=pair, row=key)[columns] for pair, key in targets]
    if skipped:
        log.warning("%d eval results carry no per-item scores ('items'); they are left out", skipped)
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).sort_values(columns[:4], kind="stable", ignore_index=True)


def _row_order(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of a (pair, row)-indexed frame grouped by pair, in the papers' order within each pair."""
    order = {k: i for i, k in enumerate(ROWS)}
    ranks = [(pair, order.get(row, len(order)), row) for pair, row in table.index]
    return table.iloc[sorted(range(len(table)), key=ranks.__getitem__)]


def main_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Indexed by (pair, row) in the papers' row order; columns (stat, column) for stat in mean/std/seeds.

    Average and Gap to teacher are over the four main benchmarks only, never their subsets nor another task's
    column (``pkt.report.columns.extra_columns``: after the benchmarks in the frame, after Gap when formatted).
    """
    present = set(tidy["benchmark"])
    columns = score_columns(present)
    main = [b for b in BENCHMARKS.values() if b in present]
    per_seed = tidy.pivot_table(index=["pair", "row", "seed"], columns="benchmark", values="score")[columns]
    per_seed["Average"] = per_seed[main].mean(axis=1, skipna=False)
    grouped = per_seed.groupby(level=["pair", "row"])
    mean, std = grouped.mean(), grouped.std(ddof=1)
    gaps = {}
    for pair, row in mean.index:
        if (pair, "teacher") in mean.index:
            diff = mean.loc[(pair, "teacher"), main] - mean.loc[(pair, row), main]
            gaps[(pair, row)] = float(diff.abs().mean(skipna=False))  # undefined if a benchmark is missing
    mean["Gap to teacher"] = pd.Series(gaps, dtype=float)
    table = pd.concat({"mean": mean, "std": std}, axis=1)
    table[("seeds", "")] = grouped.size()
    return _row_order(table)


def _by_seed_and_item(cell: pd.DataFrame, what: str) -> pd.DataFrame:
    """Per-item scores of one (pair, row, benchmark) as a [seed x id] frame; every seed must score every item."""
    if cell.duplicated(["seed", "id"]).any():
        raise ValueError(f"{what}: an item id occurs twice within one seed")
    matrix = cell.pivot(index="seed", columns="id", values="score")
    if matrix.isna().to_numpy().any():
        raise ValueError(f"{what}: the seeds did not all score the same items")
    return matrix


def _clusters(row: pd.DataFrame, ref: pd.DataFrame, ids: pd.Index, what: str) -> list[Any]:
    """Cluster label per item id (the reference's, else the row's; None: the item is its own cluster)."""
    labels = [cell.drop_duplicates("id").set_index("id")["cluster"].reindex(ids) for cell in (ref, row)]
    both = labels[0].notna() & labels[1].notna()
    if (labels[0][both] != labels[1][both]).any():
        raise ValueError(f"{what}: the two rows give some items different clusters")
    return [None if pd.isna(c) else c for c in labels[0].combine_first(labels[1])]


def _same_scores(x: dict[str, pd.DataFrame], y: dict[str, pd.DataFrame]) -> bool:
    """Whether every seed of ``x`` scores every item of every benchmark it has as ``y`` does on the same seed,
    or on ``y``'s only seed (a vanilla model, scored once)."""
    if not x or not set(x) <= set(y):
        return False
    for bench, mx in x.items():
        my = y[bench]
        if set(mx.columns) != set(my.columns):
            return False
        for s in mx.index:
            other = s if s in my.index else (my.index[0] if len(my.index) == 1 else None)
            if other is None or not np.array_equal(mx.loc[s, my.columns].to_numpy(), my.loc[other].to_numpy()):
                return False
    return True


def identical_rows(items: pd.DataFrame) -> dict[tuple[str, str], str]:
    """``{(pair, row): earlier row}`` for each row that scores every item of every benchmark it has, on every
    seed, exactly as an earlier row of its pair (papers' order) does on the same seed or on that row's only
    seed: e.g. LaTen equal to the vanilla Student when its translated update changes no answer. Such a row
    is a copy: its cells and stars are the other row's, not evidence about its method."""
    order = {k: i for i, k in enumerate(ROWS)}
    main = items[items["benchmark"].isin(task_columns(set(items["benchmark"])))]  # subsets repeat these items
    found: dict[tuple[str, str], str] = {}
    for pair, frame in main.groupby("pair", sort=True):
        scores = {row: {b: _by_seed_and_item(cell, f"{pair}/{row} on {b}") for b, cell in g.groupby("benchmark")}
                  for row, g in frame.groupby("row")}
        rows = sorted(scores, key=lambda r: (order.get(r, len(order)), r))
        for i, row in enumerate(rows):
            same = next((other for other in rows[:i] if _same_scores(scores[row], scores[other])), None)
            if same is not None:
                found[(pair, row)] = same
    return found


def vs_reference(items: pd.DataFrame, reference: str = "lora", n_boot: int = 10000, level: float = 0.95,
                 seed: int = 0, same_seeds: bool = False) -> pd.DataFrame:
    """Every row minus the reference row of its pair, per benchmark, with ``stats.paired_interval``'s interval.

    ``items`` is ``load_items``' frame. For each (pair, row) other than the reference and each benchmark
    column (subsets included, no Average) the items are aligned by id; the interval's item part resamples
    them by cluster where they carry one, its seed part is paired by seed when both rows ran the same
    seeds and has independent sides otherwise (the single-seed Student and Teacher). With ``same_seeds``
    (the ablation: variants run on fewer seeds than the configured row) the reference is restricted to the
    row's seeds, so both sides are the same seeds, paired: a variant that changes nothing gives exactly 0.
    Every cell uses the same generator ``seed``, so its interval does not depend on which other rows ran.

    Returns a frame indexed by (pair, row) in main_table's row order, columns (stat, benchmark) for stat in
    diff/lo/hi (percentage points), se_items/se_seeds (the two parts' standard errors, points) and units
    (clusters or items resampled), then ("seeds", "") the row's seed count, ("seed_part", "") whose seeds
    enter the interval (paired / row / reference / both / none) and ("identical_to", "") the earlier row it
    copies (``identical_rows``) or ""; empty (and logged) when no pair has the reference row.
    """
    columns = score_columns(set(items["benchmark"]))
    cells = {key: cell for key, cell in items.groupby(["pair", "row", "benchmark"], sort=False)}
    seeds = items.groupby(["pair", "row"])["seed"].unique()
    copies = identical_rows(items)
    side = {"paired": "paired", "a": "row", "b": "reference", "both": "both", "none": "none"}
    results: dict[tuple[str, str], dict[tuple[str, str], Any]] = {}
    for pair in sorted(set(items["pair"])):
        if not any((pair, reference, b) in cells for b in columns):
            log.warning("pair %s has no %r row with per-item scores: nothing to compare against", pair, reference)
            continue
        for row in sorted(set(items.loc[items["pair"] == pair, "row"]) - {reference}):
            out: dict[tuple[str, str], Any] = {("seeds", ""): len(seeds[(pair, row)])}
            parts = set()
            for bench in (b for b in columns if (pair, row, b) in cells and (pair, reference, b) in cells):
                what = f"{pair}/{row} vs {reference} on {bench}"
                a = _by_seed_and_item(cells[(pair, row, bench)], f"{pair}/{row} on {bench}")
                b = _by_seed_and_item(cells[(pair, reference, bench)], f"{pair}/{reference} on {bench}")
                if set(a.columns) != set(b.columns):
                    raise ValueError(f"{what}: item ids differ ({len(set(a.columns) - set(b.columns))} only in "
                                     f"{row}, {len(set(b.columns) - set(a.columns))} only in {reference})")
                if same_seeds:
                    if not set(a.index) <= set(b.index):
                        raise ValueError(f"{what}: seeds {sorted(set(a.index) - set(b.index))} of {row} are not "
                                         f"among {reference}'s {sorted(b.index)}: no same-seed comparison")
                    b = b.loc[a.index]
                clusters = _clusters(cells[(pair, row, bench)], cells[(pair, reference, bench)], a.columns, what)
                res = paired_interval(a.to_numpy(), b[a.columns].to_numpy(), clusters=clusters, n_boot=n_boot,
                                      level=level, seed=seed, pair_seeds=list(a.index) == list(b.index))
                out.update({(stat, bench): res[stat] for stat in ("diff", "lo", "hi", "se_items", "se_seeds")})
                out[("units", bench)] = res["n_units"]
                parts.add(side[str(res["seed_part"])])
            out[("seed_part", "")] = "/".join(sorted(parts))
            out[("identical_to", "")] = copies.get((pair, row), "")
            results[(pair, row)] = out
    if not results:
        log.warning("no %r row in the per-item results: no comparison table against it", reference)
        return pd.DataFrame()
    used = [c for c in columns if any(("diff", c) in out for out in results.values())]
    stats = ("diff", "lo", "hi", "se_items", "se_seeds", "units")
    layout = pd.MultiIndex.from_tuples([(s, c) for s in stats for c in used]
                                       + [("seeds", ""), ("seed_part", ""), ("identical_to", "")])
    table = pd.DataFrame.from_dict(results, orient="index").reindex(columns=layout)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["pair", "row"])
    table[("seeds", "")] = table[("seeds", "")].astype(int)
    table = _row_order(table)
    table.attrs.update(reference=reference, level=level, n_boot=n_boot, same_seeds=same_seeds)
    return table
