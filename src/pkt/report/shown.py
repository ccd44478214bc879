"""The comparison tables as a reader sees them: row and column labels, formatted cells, notes, and their files.

A row of a vanilla model is named with its model ("Student (meta-llama/Llama-2-7b-chat-hf)", a toy model by its
config name), a score column with the metric and number of test items behind it ("MMLU acc (n=14,042)"), and the
caption says under which prompt protocol each pair was evaluated: all three read from the eval JSONs
(:class:`ResultsInfo`, built by ``pkt.report.tables.describe_results``), so a table says what it measured without
the config beside it. A row that copies an earlier row on every item (``identical_rows``: LaTen whose update leaves
the student as it is) is marked with :data:`MARK` and a footnote that says why its cells, and any ± 0.00, are the
other row's. Every file goes through :func:`pkt.report.latex.write_table`, which escapes them for each format.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkt.io import write_json
from pkt.report.columns import extra_columns, extras_note
from pkt.report.latex import latex_caption, stem_of, write_table  # noqa: F401 - latex_caption: re-exported
from pkt.rows import row_labels

# {row: label} in the papers' order: the vanilla models, then each method's ``label`` (read from its class's
# source, without importing it: pkt.rows.row_labels), a new method's after the built-in ones.
ROWS = {"student": "Student", "teacher": "Teacher", **row_labels()}
VANILLA = ("student", "teacher")  # the rows that are a model as it is, named with it
MARK = "†"  # after the model name of a row identical to an earlier one (``identical_rows``)
# What the interval covers, for the captions (``paired_interval``).
COVERS = ("test items (resampled by template cluster where items share one) and training seeds of one pretrained "
          "pair; its seed part is a t interval over the seeds (seeds - 1 degrees of freedom), paired by seed where "
          "both rows ran the same seeds; a row scored once (a vanilla model: deterministic) adds no seed part of its "
          "own, and a cell with one seed on both sides covers test items only")
METRICS = {"exact_match": "exact match", "pass_at_1": "pass@1", "number_match": "number match", "rougeL": "ROUGE-L"}


@dataclass(frozen=True)
class ResultsInfo:
    """What the eval JSONs of a table say besides their scores, for its labels and caption.

    ``models``: {(pair, "student" | "teacher"): hub repo id, or the config name of a toy model};
    ``metrics``: {column: the metric names its results report}; ``sizes``: {column: the distinct item counts n};
    ``protocols``: {pair: {prompt protocol: the columns evaluated under it}}.
    """

    models: Mapping[tuple[str, str], str] = field(default_factory=dict)
    metrics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sizes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    protocols: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)


def row_label(pair: str, row: str, models: Mapping[tuple[str, str], str] | None = None) -> str:
    """'Student (meta-llama/Llama-2-7b-chat-hf)' for a vanilla row whose model is known, else the row's label."""
    name = ROWS.get(row, row)
    model = (models or {}).get((pair, row)) if row in VANILLA else None
    return f"{name} ({model})" if model else name


def column_header(column: str, info: ResultsInfo | None) -> str:
    """'MMLU' -> 'MMLU acc (n=14,042)': the metric and item count of a score column ('n=150–200' where rows
    scored different counts); the column unchanged where ``info`` knows nothing of it."""
    sizes = (info.sizes if info else {}).get(column)
    if not sizes:
        return column
    metric = "/".join(METRICS.get(m, m) for m in info.metrics.get(column, ()))
    n = f"{min(sizes):,}" if min(sizes) == max(sizes) else f"{min(sizes):,}–{max(sizes):,}"
    return f"{column} {metric} (n={n})" if metric else f"{column} (n={n})"


def headers(columns: list[str], info: ResultsInfo | None) -> dict[str, str]:
    """{column: its header} for the score columns among ``columns`` (:func:`column_header`)."""
    return {c: column_header(c, info) for c in columns if column_header(c, info) != c}


def protocol_note(info: ResultsInfo | None) -> str:
    """The caption's sentence on how each pair was prompted ('' when the results do not record it): 'Evaluation
    protocol, pair toy: toy chat format.'; the columns are named where a pair used several protocols."""
    groups: dict[str, list[str]] = {}
    for pair, used in sorted((info.protocols if info else {}).items()):
        what = (next(iter(used)) if len(used) == 1
                else "; ".join(f"{p} ({', '.join(cols)})" for p, cols in used.items()))
        groups.setdefault(what, []).append(pair)
    if not groups:
        return ""
    parts = [f"pair{'s' if len(pairs) > 1 else ''} {', '.join(pairs)}: {what}" for what, pairs in groups.items()]
    return f"Evaluation protocol, {'; '.join(parts)}."


def formatted(table: pd.DataFrame, models: Mapping[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """Strings as printed in the papers: '49.60', or '49.60 ± 1.20' when there are several seeds ('' for no value);
    the other tasks' columns follow Gap to teacher, as they are outside Average and Gap. Vanilla rows are named
    with their model where ``models`` knows it (:func:`row_label`)."""
    pairs = table.index.get_level_values("pair")
    out = pd.DataFrame({"Pair": pairs, "Model": [row_label(p, r, models) for p, r in table.index]})
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


def _identical_mask(shown: pd.DataFrame, pair: str, row: str,
                    models: Mapping[tuple[str, str], str] | None = None) -> pd.Series:
    """Which lines of a shown table are the reproduced row ``row`` of ``pair`` (matched by name, with or without
    its model, and pair)."""
    mask = shown["Model"].isin({ROWS.get(row, row), row_label(pair, row, models)})
    return mask & (shown["Pair"] == pair) if "Pair" in shown.columns else mask


def identical_note(identical: Mapping[tuple[str, str], str], labels: Mapping[str, str] | None = None,
                   scope: str = "every item, task and seed") -> str:
    """The footnote for rows marked by ``mark_identical``: what each copies, on what, and why ('' when none is).
    A copy of a vanilla row means training left that model's answers as they were (every seed alike, hence a
    ± 0.00); any other copy means the change altered no answer."""
    names = {**ROWS, **(labels or {})}
    pairs = {pair for pair, _ in identical}
    notes = []
    for (pair, row), other in identical.items():
        name, was = names.get(row, row), names.get(other, other)
        why = (f"its training left the untrained {was}'s answers unchanged on every seed (hence any ± 0.00)"
               if other in VANILLA else "the change altered no answer")
        notes.append(f"{MARK} {name}{f' ({pair})' if len(pairs) > 1 else ''} is identical to {was} on {scope}: "
                     f"{why}, so its cells (and stars) are that row's, not evidence about its own method.")
    return " ".join(notes)


def mark_identical(shown: pd.DataFrame, identical: Mapping[tuple[str, str], str],
                   models: Mapping[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """``shown`` with MARK after the model name of every row that copies an earlier one (``identical_rows``)."""
    shown = shown.copy()
    for pair, row in identical:
        mask = _identical_mask(shown, pair, row, models)
        shown.loc[mask, "Model"] = shown.loc[mask, "Model"] + f" {MARK}"
    return shown


def _joined(caption: str, *notes: str) -> str:
    """The caption followed by each non-empty note, one sentence after another."""
    notes = tuple(n for n in notes if n)
    if not notes:
        return caption
    return f"{caption.rstrip(' .')}. {' '.join(notes)}" if caption.strip() else " ".join(notes)


def write_tables(table: pd.DataFrame, csv: str | os.PathLike[str], md: str | os.PathLike[str],
                 tex: str | os.PathLike[str], metrics: str | os.PathLike[str], caption: str,
                 shown: pd.DataFrame | None = None, identical: Mapping[tuple[str, str], str] | None = None,
                 info: ResultsInfo | None = None) -> None:
    """Write the main table as CSV, Markdown and LaTeX (:func:`pkt.report.latex.write_table`), and the flat metrics
    JSON, atomically.

    ``shown`` replaces ``formatted(table)`` in the three files (``pkt.report.published_tables`` adds the published
    rows there); the metrics are always the reproduced rows' means only. ``identical`` (``identical_rows``) marks
    the rows that copy an earlier one: MARK and a footnote in Markdown and LaTeX, the copied row's key in the CSV's
    last column ``identical_to`` ('' elsewhere). ``info`` names the vanilla rows' models, the columns' metric and
    n (Markdown and LaTeX headers; the CSV keeps the bare column names) and the protocol (caption). The caption
    also gains a sentence on any other task's column (``extras_note``).
    """
    models = info.models if info else None
    shown = formatted(table, models) if shown is None else shown
    identical = dict(identical or {})
    flagged = shown.assign(identical_to="")
    for (pair, row), other in identical.items():
        flagged.loc[_identical_mask(shown, pair, row, models), "identical_to"] = other
    caption = _joined(caption, extras_note(table["mean"].columns), protocol_note(info))
    shown = mark_identical(shown, identical, models)
    write_table(shown.rename(columns=headers(list(shown.columns), info)), stem_of(csv, md, tex), caption,
                label="tab:main", footnotes=[identical_note(identical)], raw=flagged)
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
                       tex: str | os.PathLike[str], caption: str, info: ResultsInfo | None = None) -> None:
    """Write ``vs_reference``'s table atomically: CSV with the raw numbers (columns '<benchmark> diff/lo/hi',
    percentage points, then per benchmark se_items/se_seeds/units, and seed_part, identical_to), Markdown and
    LaTeX with cells '+3.25 [-1.10, +7.60]*' and MARK on a row that copies an earlier one (footnoted); the caption
    is followed by a note on how to read the cells and what the interval covers. ``info`` as in ``write_tables``."""
    ref = table.attrs.get("reference", "lora")
    stem = stem_of(csv, md, tex)
    label = f"tab:vs-{ref}"
    full = _joined(caption, vs_note(table), extras_note(table.get("diff", pd.DataFrame()).columns, False),
                   protocol_note(info))
    if table.empty:
        write_table(pd.DataFrame(columns=["Model"]), stem, full, label=label,
                    footnotes=[f"No {ROWS.get(ref, ref)} row: nothing to compare against."],
                    raw=pd.DataFrame(columns=["pair", "row", "model", "seeds"]))
        return
    models = info.models if info else None
    pairs, rows = table.index.get_level_values("pair"), table.index.get_level_values("row")
    benches = list(table["diff"].columns)
    raw = pd.DataFrame({"pair": pairs, "row": rows, "model": [ROWS.get(r, r) for r in rows],
                        "seeds": table[("seeds", "")].to_numpy()})
    shown = pd.DataFrame({"Pair": pairs, "Model": [row_label(p, r, models) for p, r in table.index]})
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
    shown = mark_identical(shown, identical, models)
    if len(set(pairs)) == 1:
        shown = shown.drop(columns="Pair")
    write_table(shown.rename(columns=headers(benches, info)), stem, full, label=label,
                footnotes=[identical_note(identical)], raw=raw)
