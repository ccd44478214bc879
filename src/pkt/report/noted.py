"""A table whose caption carries a reading note (``table.attrs["note"]``), written as CSV, Markdown and LaTeX.

The SemAlign ablation and the transfer probe both compare rows with intervals whose meaning the reader needs
beside the numbers; each builds its frame with, in ``attrs``, its ``note`` (after the caption), its ``footnotes``
(why a row is marked) and its ``headers`` (score column -> 'MMLU acc (n=420)'), and this writes the three files
atomically through :func:`pkt.report.latex.write_table`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from pkt.report.latex import stem_of, write_table
from pkt.report.shown import MARK, ROWS, identical_note, interval


def add_versus(table: pd.DataFrame, rows: Sequence[str], versus: pd.DataFrame, suffix: str,
               labels: Mapping[str, str] | None = None, scope: str = "every item and seed") -> str:
    """Add to ``table`` (one line per key of ``rows``, with 'Model' and score columns) a column
    '<column> <suffix>' per score column holding :func:`pkt.report.tables.vs_reference`'s interval for that
    line ('' for the reference and rows it lacks), MARK after the model name of a row that copies another
    on every item and seed, and ``identical_to`` (that row's label); returns the note that explains the marks."""
    labels = {**ROWS, **(labels or {})}
    compared = set(versus.index.get_level_values("row")) if not versus.empty else set()

    def stat(row: str, name: str, column: str):
        return versus.xs(row, level="row")[(name, column)].iloc[0]

    scores = [c for c in table.columns if c not in ("Pair", "Model", "Seeds", "Teacher signal", "identical_to")]
    for column in scores:
        table[f"{column} {suffix}"] = [
            interval(*(stat(row, s, column) for s in ("diff", "lo", "hi")))
            if row in compared and ("diff", column) in versus.columns else "" for row in rows]
    copies = {row: stat(row, "identical_to", "") if row in compared else "" for row in rows}
    table["Model"] = [labels.get(r, r) + (f" {MARK}" if copies[r] else "") for r in rows]
    table["identical_to"] = [labels.get(copies[r], copies[r]) for r in rows]
    return identical_note({("", r): copies[r] for r in rows if copies[r]}, labels, scope=scope)


def write_noted_table(table: pd.DataFrame, csv: str | os.PathLike[str], md: str | os.PathLike[str],
                      tex: str | os.PathLike[str], caption: str, label: str) -> None:
    """``table`` as CSV, Markdown and LaTeX (``label``), atomically; the caption is followed by the table's note,
    the table by its footnotes, and the score columns are headed by ``attrs["headers"]`` in Markdown and LaTeX.
    An ``identical_to`` column is in the CSV only (the other two mark such a row and footnote it)."""
    note = table.attrs.get("note", "")
    caption = f"{caption.rstrip(' .')}. {note}" if note else caption
    shown = table.drop(columns="identical_to", errors="ignore").rename(columns=table.attrs.get("headers", {}))
    write_table(shown, stem_of(csv, md, tex), caption, label=label, footnotes=table.attrs.get("footnotes", []),
                raw=table)
