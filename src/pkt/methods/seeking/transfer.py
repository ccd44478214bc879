"""Seeking's task-transfer table: parameters extracted from one task's seeds, every task trained from them.

Seeking Neural Nuggets' website prints, for Llama-2 13B -> 7B, one row per extraction task (GSM, MMLU, Super-NI,
LIMA) and one column per evaluation (:data:`pkt.report.published_seeking.COLUMNS`): each column's adapter is
trained on its own task, initialised from the row's factors. Here the rows are the ``seeking_from_<task>`` rows of
``seeking.transfer`` (:data:`pkt.rows.TRANSFER`), evaluated as any method is; this module turns their eval JSONs
into the table, in % (mean over seeds), with the published value and reproduced - published beside each cell
where the pair's checkpoints are Seeking's own.

An evaluation fills the column of its metric: ``seeking_superni`` fills two (exact match and ROUGE-L), read from
the result's ``metrics`` by metric name, whatever filter the task applies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pkt.io import atomic_path, write_text
from pkt.report.published_seeking import COLUMNS, TRANSFER, TRANSFER_SOURCE
from pkt.report.tables import latex_caption
from pkt.rows import transfer_source

# {evaluated task: {Seeking's column: the metric of the result that fills it}}.
TASK_COLUMNS: dict[str, dict[str, str]] = {
    "seeking_gsm8k_0shot": {"GSM8K 0-shot": "exact_match"},
    "seeking_gsm8k_8shot": {"GSM8K 8-shot": "exact_match"},
    "seeking_mmlu_0shot": {"MMLU 0-shot": "acc"},
    "seeking_mmlu_5shot": {"MMLU 5-shot": "acc"},
    "seeking_superni": {"Super-NI EM": "exact_match", "Super-NI ROUGE-L": "rougeL"},
}


def metric_value(result: Mapping[str, Any], metric: str) -> float:
    """The result's value of ``metric`` (a key ``<metric>,<filter>`` of its ``metrics``), as a fraction."""
    for key, value in result.get("metrics", {}).items():
        if key.split(",", 1)[0] == metric and isinstance(value, (int, float)):
            return float(value)
    if result.get("metric") == metric:
        return float(result["value"])
    known = sorted(result.get("metrics", {}))
    raise KeyError(f"{result.get('task')}: no metric {metric!r} in its result (it has {known})")


def source_label(task: str) -> str:
    """'seeking_gsm' -> 'gsm': an extraction task as the published table names it."""
    return task.removeprefix("seeking_")


def transfer_table(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Eval JSONs of ``seeking_from_<task>`` rows -> rows (pair, extracted from), Seeking's columns present, in %
    (mean over seeds)."""
    records = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        source = transfer_source(result["method"])
        if source is None:
            raise ValueError(f"{path}: method {result['method']!r} is not a transfer row (seeking_from_<task>)")
        for column, metric in TASK_COLUMNS.get(result["task"], {}).items():
            records.append({"pair": result["pair"], "extracted from": source_label(source), "column": column,
                            "seed": result["seed"], "score": 100.0 * metric_value(result, metric)})
    frame = pd.DataFrame.from_records(records, columns=["pair", "extracted from", "column", "seed", "score"])
    table = frame.pivot_table(index=["pair", "extracted from"], columns="column", values="score", aggfunc="mean")
    return table[[c for c in COLUMNS if c in table.columns]]


def with_published(table: pd.DataFrame, published_pairs: Iterable[str]) -> pd.DataFrame:
    """``table`` with, for the pairs whose checkpoints are Seeking's Llama-2 13B -> 7B, each row followed by the
    published row and reproduced - published (a ``value`` level: reproduced, published, difference)."""
    published_pairs, parts = set(published_pairs), []
    for (pair, source), row in table.iterrows():
        parts.append(row.rename((pair, source, "reproduced")))
        if pair in published_pairs and source in TRANSFER:
            printed = pd.Series({c: TRANSFER[source].scores.get(c) for c in row.index}, dtype=float)
            parts += [printed.rename((pair, source, "published")), (row - printed).rename((pair, source, "difference"))]
    out = pd.DataFrame(parts)
    out.index = pd.MultiIndex.from_tuples(out.index, names=["pair", "extracted from", "value"])
    return out


def write_transfer(table: pd.DataFrame, csv: str, md: str, tex: str, caption: str) -> None:
    """The table as csv, markdown and LaTeX (escaped), each with the caption and the published source."""
    caption = f"{caption} Published values: {TRANSFER_SOURCE} (Llama-2-13B -> 7B base)."
    with atomic_path(csv) as tmp:
        table.round(2).to_csv(tmp)
    write_text(md, f"{caption}\n\n{table.round(2).to_markdown()}\n")
    write_text(tex, table.round(2).to_latex(caption=latex_caption(caption), escape=True, float_format="%.2f",
                                            na_rep="--"))
