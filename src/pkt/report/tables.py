"""Comparison tables in the layout of the papers' Table 1 (pandas).

Rows: Student, Teacher (the vanilla models), then LoRA and each transfer method that has run;
columns: the four benchmarks (MMLU followed by its held-out and control subsets where the eval has
them), the average, and the gap to the teacher (SemAlign's "average gap": the mean over benchmarks of
|teacher - row|); average and gap are over the four benchmarks only. Scores are percentages, mean +-
std over seeds. Methods that have not run are absent, never filled in.

A second table gives every row minus a reference row (LoRA) with a paired bootstrap interval over
test items and seeds (``vs_reference``), from the per-item scores each eval JSON carries.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from pkt.io import atomic_path, write_json, write_text
from pkt.report.stats import paired_bootstrap

BENCHMARKS = {"mmlu": "MMLU", "gsm8k": "GSM8K", "humaneval": "HumanEval", "mbpp": "MBPP"}
SUBSETS = {"held_out": "held-out", "control": "control"}  # item group -> suffix of its extra column
# Each benchmark is followed by its subsets (only toy_mmlu has any): MMLU, MMLU held-out, MMLU control, GSM8K...
COLUMNS = [c for b in BENCHMARKS.values() for c in (b, *(f"{b} {s}" for s in SUBSETS.values()))]
ROWS = {"student": "Student", "teacher": "Teacher", "lora": "LoRA", "seeking": "Seeking", "semalign": "SemAlign",
        "laten": "LaTen", "kd": "KD", "fitnet": "FitNet"}

log = logging.getLogger(__name__)


def benchmark_of(task: str) -> str:
    """'toy_gsm8k' / 'paper_gsm8k' -> 'GSM8K'."""
    key = task.split("_", 1)[-1]
    if key not in BENCHMARKS:
        raise ValueError(f"task {task!r} is not one of the four benchmarks {sorted(BENCHMARKS)}")
    return BENCHMARKS[key]


def subset_column(benchmark: str, group: str) -> str:
    """('MMLU', 'held_out') -> 'MMLU held-out': the extra column of the items of one group."""
    if group not in SUBSETS:
        raise ValueError(f"item group {group!r} is not one of {sorted(SUBSETS)}")
    return f"{benchmark} {SUBSETS[group]}"


def _results(paths: Iterable[str | os.PathLike[str]],
             pairs: dict[str, dict[str, str]]) -> Iterator[tuple[dict[str, Any], str, list[tuple[str, str]]]]:
    """Each eval JSON with its benchmark and the (pair, row) cells it fills: a vanilla result names a model
    in the pair slot and is the student or teacher row of every pair that model belongs to."""
    tasks: dict[str, str] = {}
    for path in paths:
        r = json.loads(Path(path).read_text())
        bench = benchmark_of(r["task"])
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


def load_items(paths: Iterable[str | os.PathLike[str]], pairs: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Eval JSONs -> per-item scores: pair, row, benchmark, seed, id, score (%), for the bootstrap.

    Items of a group (toy_mmlu's held_out/control) also appear under their subset benchmark. Results
    written before evaluation kept per-item scores (no ``items`` key) are skipped with a warning.
    """
    columns = ["pair", "row", "benchmark", "seed", "id", "score"]
    frames, skipped = [], 0
    for r, bench, targets in _results(paths, pairs):
        if not r.get("items"):
            skipped += 1
            continue
        it = r["items"]
        items = pd.DataFrame({"id": it["id"], "score": it["score"], "group": it.get("group") or [None] * len(it["id"])})
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

    Average and Gap to teacher are over the four main benchmarks only, never their subsets.
    """
    present = set(tidy["benchmark"])
    columns = [c for c in COLUMNS if c in present]
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


def vs_reference(items: pd.DataFrame, reference: str = "lora", n_boot: int = 10000, level: float = 0.95,
                 seed: int = 0) -> pd.DataFrame:
    """Every row minus the reference row of its pair, per benchmark, with a paired bootstrap interval.

    ``items`` is ``load_items``' frame. For each (pair, row) other than the reference and each benchmark
    column (subsets included, no Average) the items are aligned by id and ``stats.paired_bootstrap``
    resamples items (the same ones on both sides) and seeds (paired by seed when both rows ran the same
    seeds, independently otherwise, as for the single-seed Student and Teacher). Every cell uses the
    same generator ``seed``, so its interval does not depend on which other rows have run.

    Returns a frame indexed by (pair, row) in main_table's row order, columns (stat, benchmark) for
    stat in diff/lo/hi (percentage points) and ("seeds", "") the row's seed count; empty (and logged)
    when no pair has the reference row.
    """
    columns = [c for c in COLUMNS if c in set(items["benchmark"])]
    cells = {key: cell for key, cell in items.groupby(["pair", "row", "benchmark"], sort=False)}
    seeds = items.groupby(["pair", "row"])["seed"].nunique()
    results: dict[tuple[str, str], dict[tuple[str, str], float]] = {}
    for pair in sorted(set(items["pair"])):
        if not any((pair, reference, b) in cells for b in columns):
            log.warning("pair %s has no %r row with per-item scores: nothing to compare against", pair, reference)
            continue
        for row in sorted(set(items.loc[items["pair"] == pair, "row"]) - {reference}):
            results[(pair, row)] = out = {("seeds", ""): seeds[(pair, row)]}
            for bench in (b for b in columns if (pair, row, b) in cells and (pair, reference, b) in cells):
                what = f"{pair}/{row} vs {reference} on {bench}"
                a = _by_seed_and_item(cells[(pair, row, bench)], f"{pair}/{row} on {bench}")
                b = _by_seed_and_item(cells[(pair, reference, bench)], f"{pair}/{reference} on {bench}")
                if set(a.columns) != set(b.columns):
                    raise ValueError(f"{what}: item ids differ ({len(set(a.columns) - set(b.columns))} only in "
                                     f"{row}, {len(set(b.columns) - set(a.columns))} only in {reference})")
                res = paired_bootstrap(a.to_numpy(), b[a.columns].to_numpy(), n_boot=n_boot, level=level, seed=seed,
                                       pair_seeds=list(a.index) == list(b.index))
                out.update({(stat, bench): res[stat] for stat in ("diff", "lo", "hi")})
    if not results:
        log.warning("no %r row in the per-item results: no comparison table against it", reference)
        return pd.DataFrame()
    used = [c for c in columns if any(("diff", c) in out for out in results.values())]
    layout = pd.MultiIndex.from_tuples([(s, c) for s in ("diff", "lo", "hi") for c in used] + [("seeds", "")])
    table = pd.DataFrame.from_dict(results, orient="index").reindex(columns=layout)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["pair", "row"])
    table[("seeds", "")] = table[("seeds", "")].astype(int)
    table = _row_order(table)
    table.attrs.update(reference=reference, level=level, n_boot=n_boot)
    return table


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """Strings as printed in the papers: '49.60', or '49.60 ± 1.20' when there are several seeds."""
    pairs = table.index.get_level_values("pair")
    out = pd.DataFrame({"Pair": pairs, "Model": [ROWS.get(r, r) for r in table.index.get_level_values("row")]})
    for c in table["std"].columns:
        out[c] = [f"{m:.2f}" + (f" ± {s:.2f}" if pd.notna(s) else "")
                  for m, s in zip(table[("mean", c)], table[("std", c)])]
    out["Gap to teacher"] = [f"{g:.2f}" if pd.notna(g) else "" for g in table[("mean", "Gap to teacher")]]
    out["Seeds"] = table[("seeds", "")].astype(int).to_numpy()
    return out.drop(columns="Pair") if len(set(pairs)) == 1 else out


def flat_metrics(table: pd.DataFrame) -> dict[str, float]:
    """``{"<pair>/<row>/<column>": mean}`` for ``dvc metrics diff``."""
    means = table["mean"]
    return {f"{pair}/{row}/{c}": round(float(v), 4)
            for (pair, row), values in means.iterrows() for c, v in values.items() if pd.notna(v)}


def write_tables(table: pd.DataFrame, csv: str | os.PathLike[str], md: str | os.PathLike[str],
                 tex: str | os.PathLike[str], metrics: str | os.PathLike[str], caption: str,
                 shown: pd.DataFrame | None = None) -> None:
    """Write the table as CSV, Markdown and LaTeX, and the flat metrics JSON, atomically.

    ``shown`` replaces ``formatted(table)`` in the CSV, Markdown and LaTeX (``pkt.report.published_tables`` adds the
    published rows there) and is written as given (Markdown keeps '+0.06' and '2.50' as they are); the
    metrics are always the reproduced rows' means only.
    """
    given = shown is not None
    shown = shown if given else formatted(table)
    with atomic_path(csv) as tmp:
        shown.to_csv(tmp, index=False)
    write_text(md, f"{caption}\n\n" + shown.to_markdown(index=False, disable_numparse=given) + "\n")
    write_text(tex, shown.to_latex(index=False, caption=caption, label="tab:main", escape=True))
    write_json(metrics, flat_metrics(table))


def interval(diff: float, lo: float, hi: float) -> str:
    """'+3.25 [-1.10, +7.60]', with a trailing '*' when the interval excludes 0 (beyond float noise)."""
    if pd.isna(diff):
        return ""
    excludes = lo > 1e-9 or hi < -1e-9
    return f"{diff + 0.0:+.2f} [{lo + 0.0:+.2f}, {hi + 0.0:+.2f}]" + ("*" if excludes else "")


def write_vs_reference(table: pd.DataFrame, csv: str | os.PathLike[str], md: str | os.PathLike[str],
                       tex: str | os.PathLike[str], caption: str) -> None:
    """Write ``vs_reference``'s table atomically: CSV with the raw numbers (columns '<benchmark> diff/lo/hi',
    percentage points), Markdown and LaTeX with cells '+3.25 [-1.10, +7.60]*'; the caption is followed
    by a note on how to read the cells."""
    ref = table.attrs.get("reference", "lora")
    level, n_boot = table.attrs.get("level", 0.95), table.attrs.get("n_boot")
    reps = f" ({n_boot} replicates)" if n_boot else ""
    note = (f"Row minus {ROWS.get(ref, ref)} in percentage points, with the {level:.0%} percentile interval of a "
            f"paired bootstrap over test items and seeds{reps} in brackets; * = the interval excludes 0.")
    full = f"{caption.rstrip(' .')}. {note}" if caption.strip() else note
    if table.empty:
        write_text(csv, "pair,row,model,seeds\n")
        write_text(md, f"{full}\n\nNo {ROWS.get(ref, ref)} row: nothing to compare against.\n")
        write_text(tex, f"% No {ref} row: nothing to compare against.\n")
        return
    pairs, rows = table.index.get_level_values("pair"), table.index.get_level_values("row")
    benches = list(table["diff"].columns)
    raw = pd.DataFrame({"pair": pairs, "row": rows, "model": [ROWS.get(r, r) for r in rows],
                        "seeds": table[("seeds", "")].to_numpy()})
    shown = pd.DataFrame({"Pair": pairs, "Model": raw["model"]})
    for c in benches:
        for stat in ("diff", "lo", "hi"):
            raw[f"{c} {stat}"] = table[(stat, c)].to_numpy()
        shown[c] = [interval(*v) for v in zip(table[("diff", c)], table[("lo", c)], table[("hi", c)])]
    shown["Seeds"] = raw["seeds"]
    if len(set(pairs)) == 1:
        shown = shown.drop(columns="Pair")
    with atomic_path(csv) as tmp:
        raw.to_csv(tmp, index=False)
    write_text(md, f"{full}\n\n" + shown.to_markdown(index=False) + "\n")
    write_text(tex, shown.to_latex(index=False, caption=full.replace("%", r"\%"), label=f"tab:vs_{ref}",
                                   escape=True))
