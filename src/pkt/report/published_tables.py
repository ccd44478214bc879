"""The papers' published numbers beside the reproduced ones (pandas), for runs of the papers' hub models.

Two views, both fed by ``pkt.report.published.published_cells`` (nothing for toy pairs, whose tables then stay as
``pkt.report.tables`` writes them):

- the main table (``pkt.report.tables.main_table``) gains, after each reproduced row with a published counterpart,
  that row as published (single numbers, no std) and a difference row, reproduced mean minus published, in
  percentage points; Average and Gap to teacher of a published row are computed from the published numbers
  over the same benchmarks as the reproduced row's, so that their differences compare like with like;
- a table in the layout of SemAlign Table 2: one row per teacher of a student, the teacher's HumanEval and
  MBPP, then Seeking, LaTen and SemAlign on both, reproduced mean ± std with the published value beside.

Published rows are labelled with the paper's protocol (Open-Instruct prompts, Tulu chat format, 0-shot):
that is how they were measured, whatever this run used. The run's own protocol (``protocol``: "tulu" or
"chat_template") labels the difference rows, so a difference across protocols never reads as a like-for-like
comparison.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from pkt.report.latex import write_table
from pkt.report.published import PAPER_PROTOCOL, SOURCE, PublishedCell, protocol_label, repo_id
from pkt.report.shown import MARK, ResultsInfo, column_header, identical_note, protocol_note
from pkt.report.tables import BENCHMARKS, ROWS, formatted

SUMMARIES = ["Average", "Gap to teacher"]
CODE_BENCHMARKS = ["HumanEval", "MBPP"]
# SemAlign Table 2's columns: label -> (row, benchmark)
CODE_COLUMNS = {
    f"{ROWS[row]} {bench}": (row, bench)
    for row in ("teacher", "seeking", "laten", "semalign")
    for bench in CODE_BENCHMARKS
}
CODE_STATS = ["mean", "std", "published"]


def _number(v: float) -> str:
    return "" if pd.isna(v) else f"{v:.2f}"


def _signed(v: float) -> str:
    return "" if pd.isna(v) else f"{v + 0.0:+.2f}"  # + 0.0: no '-0.00'


def _code_cell(mean: float, std: float, published: float) -> str:
    """'17.10 ± 0.52 (20.12)': reproduced mean ± std (no std for one seed), the published value in parentheses."""
    parts = [] if pd.isna(mean) else [f"{mean:.2f}" + ("" if pd.isna(std) else f" ± {std:.2f}")]
    return " ".join(parts + ([] if pd.isna(published) else [f"({published:.2f})"]))


def published_table(cells: Iterable[PublishedCell], benchmarks: Sequence[str]) -> pd.DataFrame:
    """Published cells -> a frame indexed by (pair, row): one column per benchmark in ``benchmarks`` (NaN where
    nothing is published), Average and Gap to teacher over those benchmarks (NaN unless every one is
    published; the gap needs the pair's published teacher row), and ``source`` (e.g. 'SemAlign Table 1')."""
    benchmarks = list(benchmarks)
    tidy = pd.DataFrame([asdict(c) for c in cells], columns=["pair", "row", "benchmark", "value", "source"])
    if tidy.empty:
        index = pd.MultiIndex.from_tuples([], names=["pair", "row"])
        return pd.DataFrame(index=index, columns=[*benchmarks, *SUMMARIES, "source"], dtype=float)
    if tidy.duplicated(["pair", "row", "benchmark"]).any():
        raise ValueError("a published cell occurs twice")
    values = tidy.pivot(index=["pair", "row"], columns="benchmark", values="value").reindex(columns=benchmarks)
    values = values.astype(float).rename_axis(columns=None)
    values["Average"] = values[benchmarks].mean(axis=1, skipna=False) if benchmarks else float("nan")
    gaps = {}
    for pair, row in values.index:
        if (pair, "teacher") in values.index:
            diff = values.loc[(pair, "teacher"), benchmarks] - values.loc[(pair, row), benchmarks]
            gaps[(pair, row)] = float(diff.abs().mean(skipna=False)) if benchmarks else float("nan")
    values["Gap to teacher"] = pd.Series(gaps, dtype=float)
    values["source"] = tidy.groupby(["pair", "row"])["source"].agg(lambda s: " / ".join(dict.fromkeys(s)))
    return values


def differences(table: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Reproduced mean minus published, for every (pair, row) of both and every numeric column of both
    (benchmarks, Average, Gap to teacher); NaN where either side is missing. Rows in ``table``'s order."""
    means = table["mean"]
    columns = [c for c in published.columns if c != "source" and c in means.columns]
    index = [key for key in means.index if key in published.index]
    return means.loc[index, columns] - published.loc[index, columns].astype(float)


def main_with_published(
    table: pd.DataFrame,
    cells: Sequence[PublishedCell],
    protocol: str = PAPER_PROTOCOL,
    models: Mapping[tuple[str, str], str] | None = None,
) -> pd.DataFrame:
    """``pkt.report.tables.formatted(table)`` with, after each reproduced row that has a published counterpart, a
    row 'SemAlign, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)' (no std, no seeds) and a row
    'SemAlign, reproduced (<protocol>) − published' (signed, percentage points). Without published cells
    (toy pairs) it is ``formatted(table)`` unchanged. ``models`` names the vanilla rows' models (``formatted``)."""
    run = protocol_label(protocol)
    shown = formatted(table, models)
    if not cells:
        return shown
    main = [b for b in BENCHMARKS.values() if b in table["mean"].columns]
    published = published_table(cells, main)
    diff = differences(table, published)
    numeric = [c for c in diff.columns if c in shown.columns]
    paper = protocol_label(PAPER_PROTOCOL)
    records: list[dict[str, Any]] = []
    for i, (pair, row) in enumerate(table.index):
        records.append(shown.iloc[i].to_dict())
        if (pair, row) not in diff.index or published.loc[(pair, row), main].isna().all():
            continue  # nothing published for this row on the benchmarks this run has
        name, pub = ROWS.get(row, row), published.loc[(pair, row)]
        where = {"Pair": pair} if "Pair" in shown.columns else {}
        records.append(
            {
                **where,
                "Model": f"{name}, published ({pub['source']}, {paper})",
                "Seeds": "",
                **{c: _number(pub[c]) for c in numeric},
            }
        )
        records.append(
            {
                **where,
                "Model": f"{name}, reproduced ({run}) − published",
                "Seeds": "",
                **{c: _signed(diff.loc[(pair, row), c]) for c in numeric},
            }
        )
    return pd.DataFrame.from_records(records, columns=list(shown.columns)).fillna("")


def published_note(cells: Sequence[PublishedCell], protocol: str = PAPER_PROTOCOL) -> str:
    """What the published and difference rows are, for the main table's caption; '' without published cells."""
    run = protocol_label(protocol)
    if not cells:
        return ""
    sources = " / ".join(sorted({c.source.removeprefix("SemAlign ") for c in cells}))
    note = (
        f"Published rows: {SOURCE} {sources}, which follows LaTen's protocol (Open-Instruct prompts, Tulu chat "
        f"format, 0-shot); single numbers, no std. Difference rows: this run's mean minus the published value, "
        f"in points; this run: {run}."
    )
    if protocol != PAPER_PROTOCOL:
        note += " That is not the papers' protocol: a difference also measures the change of protocol."
    return note


def code_teacher_table(
    table: pd.DataFrame,
    pairs: Mapping[str, Mapping[str, str]],
    models: Mapping[str, Mapping[str, Any]],
    cells: Sequence[PublishedCell],
) -> pd.DataFrame:
    """SemAlign Table 2's layout from ``main_table``'s frame: one row per pair, the pairs of one student
    together (students in the order they first appear in ``pairs``, then the pairs' order), indexed by pair.

    Columns: ("student", "") and ("teacher", "") (hub repo id, or the model's name for toy models), then
    (stat, label) for stat in mean/std/published and label in ``CODE_COLUMNS`` ('Teacher HumanEval', ...,
    'SemAlign MBPP'): the teacher's vanilla score and each transfer method's score on HumanEval and MBPP.
    NaN where the run has no such result or nothing is published. No rows when no pair has a value at all.
    """
    published = {(c.pair, c.row, c.benchmark): c.value for c in cells}
    students = list(dict.fromkeys(spec["student"] for spec in pairs.values()))
    ordered = [p for s in students for p, spec in pairs.items() if spec["student"] == s]
    columns = pd.MultiIndex.from_tuples(
        [("student", ""), ("teacher", "")] + [(stat, label) for stat in CODE_STATS for label in CODE_COLUMNS]
    )
    records = {}
    for pair in ordered:
        spec = pairs[pair]
        out: dict[tuple[str, str], Any] = {
            (role, ""): repo_id(models.get(spec[role])) or spec[role] for role in ("student", "teacher")
        }
        for label, (row, bench) in CODE_COLUMNS.items():
            for stat in ("mean", "std"):
                present = (stat, bench) in table.columns and (pair, row) in table.index
                out[(stat, label)] = float(table.loc[(pair, row), (stat, bench)]) if present else float("nan")
            out[("published", label)] = published.get((pair, row, bench), float("nan"))
        records[pair] = out
    code = pd.DataFrame.from_dict(records, orient="index").reindex(columns=columns)
    code.index.name = "pair"
    values = code[["mean", "published"]].astype(float)
    return code[values.notna().any(axis=1)] if len(code) else code


def write_code_teachers(
    code: pd.DataFrame,
    csv: str | os.PathLike[str],
    md: str | os.PathLike[str],
    caption: str,
    protocol: str = PAPER_PROTOCOL,
    info: ResultsInfo | None = None,
    identical: Mapping[tuple[str, str], str] | None = None,
) -> None:
    """Write ``code_teacher_table``'s frame atomically as ``csv``, ``md`` and the .tex beside them
    (:func:`pkt.report.latex.write_table`): CSV with the raw numbers (pair, student, teacher, then
    '<label> mean/std/published' per column), Markdown and LaTeX with cells '17.34 ± 0.52 (20.12)': reproduced
    mean ± std over seeds, the published value in parentheses, the columns headed with the benchmark's metric and
    n where ``info`` knows them, and the caption with each pair's protocol. A cell of a row that copies another
    on every item (``identical``: ``pkt.report.tables.identical_rows``, LaTen = Student) is marked and footnoted.
    With no rows, the header and a note saying why."""
    run = protocol_label(protocol)
    has_published = bool(len(code)) and code["published"].notna().to_numpy().any()
    note = (
        "HumanEval and MBPP (pass@1, %) of each teacher of a student and of the transfer methods from it, "
        "in the layout of SemAlign Table 2: reproduced mean ± std over seeds"
    )
    if has_published:  # the run's protocol matters only beside published numbers (toy tasks have their own)
        note += (
            f" ({run}), in parentheses the published value ({SOURCE} Table 2, Table 1 for the Llama-2-13B-chat "
            f"teacher; {protocol_label(PAPER_PROTOCOL)})"
        )
    full = f"{caption.rstrip(' .')}. {note}." if caption.strip() else f"{note}."
    full = f"{full} {protocol_note(info)}".rstrip()
    raw_columns = ["pair", "student", "teacher"] + [f"{label} {stat}" for label in CODE_COLUMNS for stat in CODE_STATS]
    headed = {label: label.replace(bench, column_header(bench, info)) for label, (_, bench) in CODE_COLUMNS.items()}
    stem = Path(csv).with_suffix("")
    if Path(md) != stem.with_suffix(".md"):
        raise ValueError(f"{csv} and {md} are not <stem>.csv and <stem>.md of one stem")
    if code.empty:
        write_table(pd.DataFrame(columns=["Student", "Teacher", *headed.values()]), stem, full,
                    label="tab:code-teachers", footnotes=["No HumanEval or MBPP result in this run: no row to show."],
                    raw=pd.DataFrame(columns=raw_columns))
        return
    raw = pd.DataFrame({"pair": code.index, "student": code[("student", "")], "teacher": code[("teacher", "")]})
    shown = pd.DataFrame({"Student": code[("student", "")], "Teacher": code[("teacher", "")]})
    copies = {(pair, row): other for (pair, row), other in (identical or {}).items() if pair in code.index
              and any(row == r for r, _ in CODE_COLUMNS.values())}
    for label, (row, _) in CODE_COLUMNS.items():
        for stat in CODE_STATS:
            raw[f"{label} {stat}"] = code[(stat, label)].to_numpy()
        cells = [_code_cell(*v) for v in zip(*(code[(stat, label)] for stat in CODE_STATS))]
        marked = [bool(c) and (pair, row) in copies for pair, c in zip(code.index, cells)]
        shown[headed[label]] = [c + f" {MARK}" if mark else c for c, mark in zip(cells, marked)]
    write_table(shown, stem, full, label="tab:code-teachers", footnotes=[identical_note(copies)], raw=raw[raw_columns])
