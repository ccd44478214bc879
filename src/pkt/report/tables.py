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
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pkt.io import atomic_path, write_json, write_text
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
from pkt.report.stats import paired_interval
from pkt.rows import row_labels

# {row: label} in the papers' order: the vanilla models, then each method's ``label`` (read from its class's
# source, without importing it: pkt.rows.row_labels), a new method's after the built-in ones.
ROWS = {"student": "Student", "teacher": "Teacher", **row_labels()}
MARK = "†"  # after the model name of a row identical to an earlier one (``identical_rows``)
# What the interval covers, for the captions (``paired_interval``).
COVERS = ("test items (resampled by template cluster where items share one) and training seeds of one pretrained "
          "pair; its seed part is a t interval over the seeds (seeds - 1 degrees of freedom), paired by seed where "
          "both rows ran the same seeds; a row scored once (a vanilla model: deterministic) adds no seed part of its "
          "own, and a cell with one seed on both sides covers test items only")

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


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """Strings as printed in the papers: '49.60', or '49.60 ± 1.20' when there are several seeds ('' for no value);
    the other tasks' columns follow Gap to teacher, as they are outside Average and Gap."""
    pairs = table.index.get_level_values("pair")
    out = pd.DataFrame({"Pair": pairs, "Model": [ROWS.get(r, r) for r in table.index.get_level_values("row")]})
    extras = extra_columns(table["std"].columns)
    cells = {c: ["" if pd.isna(m) else f"{m:.2f}" + (f" ± {s:.2f}" if pd.notna(s) else "")
                 for m, s in zip(table[("mean", c)], table[("std", c)])] for c in table["std"].columns}
    for c in (c for c in table["std"].columns if c not in extras):
        out[c] = cells[c]
    out["Gap to teacher"] = [f"{g:.2f}" if pd.notna(g) else "" for g in table[("mean", "Gap to teacher")]]
    for c in extras:
        out[c] = cells[c]
    out["Seeds"] = table[("seeds", "")].astype(int).to_numpy()
    return out.drop(columns="Pair") if len(set(pairs)) == 1 else out


def flat_metrics(table: pd.DataFrame) -> dict[str, float]:
    """``{"<pair>/<row>/<column>": mean}`` for ``dvc metrics diff``."""
    means = table["mean"]
    return {f"{pair}/{row}/{c}": round(float(v), 4)
            for (pair, row), values in means.iterrows() for c, v in values.items() if pd.notna(v)}


def latex_caption(text: str) -> str:
    """``text`` with LaTeX's special characters escaped ('%' would comment out the rest of the caption, '_' in
    'toy_mmlu' needs math mode): pandas escapes the cells, not the caption."""
    special = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(special.get(ch, "\\" + ch if ch in "&%$#_{}" else ch) for ch in text)


def _identical_mask(shown: pd.DataFrame, pair: str, row: str) -> pd.Series:
    """Which lines of a shown table are the reproduced row ``row`` of ``pair`` (matched by name, and pair)."""
    mask = shown["Model"] == ROWS.get(row, row)
    return mask & (shown["Pair"] == pair) if "Pair" in shown.columns else mask


def identical_note(identical: Mapping[tuple[str, str], str], labels: Mapping[str, str] | None = None,
                   scope: str = "every item, task and seed") -> str:
    """The footnote for rows marked by ``mark_identical``: what they copy, and on what; '' when none is."""
    names = {**ROWS, **(labels or {})}
    pairs = {pair for pair, _ in identical}
    copies = [f"{names.get(row, row)}{f' ({pair})' if len(pairs) > 1 else ''} is identical to "
              f"{names.get(other, other)}" for (pair, row), other in identical.items()]
    if not copies:
        return ""
    return (f"{MARK} {'; '.join(copies)} on {scope}: its cells (and stars) are that row's, not evidence about "
            "its own method.")


def mark_identical(shown: pd.DataFrame, identical: Mapping[tuple[str, str], str]) -> pd.DataFrame:
    """``shown`` with MARK after the model name of every row that copies an earlier one (``identical_rows``)."""
    shown = shown.copy()
    for pair, row in identical:
        mask = _identical_mask(shown, pair, row)
        shown.loc[mask, "Model"] = shown.loc[mask, "Model"] + f" {MARK}"
    return shown


def write_tables(table: pd.DataFrame, csv: str | os.PathLike[str], md: str | os.PathLike[str],
                 tex: str | os.PathLike[str], metrics: str | os.PathLike[str], caption: str,
                 shown: pd.DataFrame | None = None, identical: Mapping[tuple[str, str], str] | None = None) -> None:
    """Write the table as CSV, Markdown and LaTeX, and the flat metrics JSON, atomically.

    ``shown`` replaces ``formatted(table)`` in the CSV, Markdown and LaTeX (``pkt.report.published_tables`` adds the
    published rows there) and is written as given (Markdown keeps '+0.06' and '2.50' as they are); the
    metrics are always the reproduced rows' means only. ``identical`` (``identical_rows``) marks the rows that
    copy an earlier one: MARK and a footnote in Markdown and LaTeX, the copied row's key in the CSV's last
    column ``identical_to`` ('' elsewhere). The caption gains a sentence on any other task's column (``extras_note``).
    """
    given = shown is not None
    shown = shown if given else formatted(table)
    identical = dict(identical or {})
    flagged = shown.assign(identical_to="")
    for (pair, row), other in identical.items():
        flagged.loc[_identical_mask(shown, pair, row), "identical_to"] = other
    with atomic_path(csv) as tmp:
        flagged.to_csv(tmp, index=False)
    note = " ".join(n for n in (extras_note(table["mean"].columns), identical_note(identical)) if n)
    caption = f"{caption.rstrip(' .')}. {note}" if note else caption
    shown = mark_identical(shown, identical)
    write_text(md, f"{caption}\n\n" + shown.to_markdown(index=False, disable_numparse=given) + "\n")
    write_text(tex, shown.to_latex(index=False, caption=latex_caption(caption), label="tab:main", escape=True))
    write_json(metrics, flat_metrics(table))


def interval(diff: float, lo: float, hi: float) -> str:
    """'+3.25 [-1.10, +7.60]', with a trailing '*' when the interval excludes 0 (beyond float noise)."""
    if pd.isna(diff):
        return ""
    excludes = lo > 1e-9 or hi < -1e-9
    return f"{diff + 0.0:+.2f} [{lo + 0.0:+.2f}, {hi + 0.0:+.2f}]" + ("*" if excludes else "")


def vs_note(table: pd.DataFrame) -> str:
    """How to read ``vs_reference``'s cells, and what their interval covers, for the caption."""
    ref = table.attrs.get("reference", "lora")
    level, n_boot = table.attrs.get("level", 0.95), table.attrs.get("n_boot")
    reps = f" ({n_boot} replicates)" if n_boot else ""
    return (f"Row minus {ROWS.get(ref, ref)} in percentage points, with a {level:.0%} interval in brackets; * = the "
            f"interval excludes 0. The interval covers {COVERS}; its item part is the variance of a paired bootstrap "
            f"over the test items{reps}.")


def write_vs_reference(table: pd.DataFrame, csv: str | os.PathLike[str], md: str | os.PathLike[str],
                       tex: str | os.PathLike[str], caption: str) -> None:
    """Write ``vs_reference``'s table atomically: CSV with the raw numbers (columns '<benchmark> diff/lo/hi',
    percentage points, then per benchmark se_items/se_seeds/units, and seed_part, identical_to), Markdown and
    LaTeX with cells '+3.25 [-1.10, +7.60]*' and MARK on a row that copies an earlier one; the caption is
    followed by a note on how to read the cells and what the interval covers."""
    ref = table.attrs.get("reference", "lora")
    note = " ".join(n for n in (vs_note(table), extras_note(table.get("diff", pd.DataFrame()).columns, False)) if n)
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
    for c in benches:  # after the historical columns, so that readers by position keep working
        for stat in ("se_items", "se_seeds", "units"):
            raw[f"{c} {stat}"] = table[(stat, c)].to_numpy() if (stat, c) in table.columns else np.nan
    for key in ("seed_part", "identical_to"):
        raw[key] = table[(key, "")].to_numpy() if (key, "") in table.columns else ""
    shown["Seeds"] = raw["seeds"]
    identical = {key: other for key, other in zip(table.index, raw["identical_to"]) if other}
    shown = mark_identical(shown, identical)
    note = identical_note(identical)
    full = f"{full} {note}" if note else full
    if len(set(pairs)) == 1:
        shown = shown.drop(columns="Pair")
    with atomic_path(csv) as tmp:
        raw.to_csv(tmp, index=False)
    write_text(md, f"{full}\n\n" + shown.to_markdown(index=False) + "\n")
    write_text(tex, shown.to_latex(index=False, caption=latex_caption(full), label=f"tab:vs_{ref}",
                                   escape=True))
