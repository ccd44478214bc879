"""Seeking's own tables: its Table 1, its task-transfer table and its ablations, beside the published values.

Seeking Neural Nuggets' website prints, per pair of base checkpoints, a Table 1 (rows Vanilla student, Vanilla
teacher, student-LoRA, "+ teacher Param.") and, for Llama-2 13B -> 7B, a task-transfer table (one row per task the
parameters are extracted from), with one column per evaluation (:data:`pkt.report.published_seeking.COLUMNS`) and
their average. Here both are built from the eval JSONs of the Seeking config (config/seeking.yaml): Table 1 from
the vanilla models and the ``lora`` and ``seeking`` rows, the transfer table from the ``seeking_from_<task>`` rows
of ``seeking.transfer`` (:data:`pkt.rows.TRANSFER`), in % (mean over seeds), each row followed by the published
row and reproduced - published where the pair's checkpoints are one of Seeking's. The ablation table
(:func:`ablation_table`, rows ``seeking_<switch>_<variant>`` of ``seeking.ablation``) sets each variant's average
beside the full method's, as the website's bar charts do for LLaMA-1 13B -> 7B and 30B -> 7B.

An evaluation fills the column of its metric: ``seeking_superni`` fills two (exact match and ROUGE-L), read from
the result's ``metrics`` by metric name, whatever filter the task applies. Avg is over the seven columns, only
where all seven are present (AlpacaFarm is off by default, so a default run prints none, as the published
vanilla rows do).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pkt.report import latex
from pkt.report.published import PublishedRow
from pkt.report.published_seeking import (
    ABLATION_PAIR_NAMES,
    ABLATION_PAIRS,
    ABLATIONS,
    COLUMNS,
    LLAMA2_7B,
    LLAMA2_13B,
    PUBLISHED,
    SOURCE,
    TRANSFER,
)
from pkt.rows import FULL, ablation_of, transfer_source

# {evaluated task: {Seeking's column: the metric of the result that fills it}}.
TASK_COLUMNS: dict[str, dict[str, str]] = {
    "seeking_gsm8k_0shot": {"GSM8K 0-shot": "exact_match"},
    "seeking_gsm8k_8shot": {"GSM8K 8-shot": "exact_match"},
    "seeking_mmlu_0shot": {"MMLU 0-shot": "acc"},
    "seeking_mmlu_5shot": {"MMLU 5-shot": "acc"},
    "seeking_superni": {"Super-NI EM": "exact_match", "Super-NI ROUGE-L": "rougeL"},
    "alpaca_farm": {"AlpacaFarm": "win_rate"},  # rule alpaca_farm (seeking_eval.alpaca_farm)
}
MAIN_ROWS = ("student", "teacher", "lora", "seeking")  # Table 1's order


def metric_value(result: Mapping[str, Any], metric: str) -> float:
    """The result's value of ``metric`` (a key ``<metric>,<filter>`` of its ``metrics``), as a fraction."""
    for key, value in result.get("metrics", {}).items():
        if key.split(",", 1)[0] == metric and isinstance(value, (int, float)):
            return float(value)
    if result.get("metric") == metric:
        return float(result["value"])
    known = sorted(result.get("metrics", {}))
    raise KeyError(f"{result.get('task')}: no metric {metric!r} in its result (it has {known})")


# config/seeking.yaml's tasks whose name is not "seeking_" + Seeking's own (its data folders, its published rows).
SOURCE_LABELS = {"seeking_superni": "super_ni"}


def source_label(task: str) -> str:
    """'seeking_gsm' -> 'gsm', 'seeking_superni' -> 'super_ni': an extraction task as the published table names it
    (:data:`pkt.report.published_seeking.TRANSFER`'s keys)."""
    return SOURCE_LABELS.get(task, task.removeprefix("seeking_"))


def cells(paths: Iterable[str | os.PathLike[str]],
          rows_of: Callable[[dict[str, Any]], list[tuple[str, str]]]) -> pd.DataFrame:
    """Eval JSONs -> rows (pair, row) x Seeking's columns present, in % (mean over seeds); ``rows_of`` names the
    (pair, row) cells a result fills."""
    records = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        for pair, row in rows_of(result):
            records += [{"pair": pair, "row": row, "column": column, "seed": result["seed"],
                         "score": 100.0 * metric_value(result, metric)}
                        for column, metric in TASK_COLUMNS.get(result["task"], {}).items()]
    frame = pd.DataFrame.from_records(records, columns=["pair", "row", "column", "seed", "score"])
    table = frame.pivot_table(index=["pair", "row"], columns="column", values="score", aggfunc="mean")
    table = table[[c for c in COLUMNS if c in table.columns]]
    if len(table.columns) == len(COLUMNS):
        table["Avg"] = table[list(COLUMNS)].mean(axis=1)
    return table


def main_table(paths: Iterable[str | os.PathLike[str]], pairs: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """Seeking's Table 1 of this run: a vanilla result is the student or teacher row of every pair holding its
    model; the lora and seeking rows are their own."""

    def rows_of(result: dict[str, Any]) -> list[tuple[str, str]]:
        if result["method"] == "vanilla":
            return [(p, role) for p, spec in pairs.items() for role in ("student", "teacher")
                    if spec[role] == result["pair"]]
        return [(result["pair"], result["method"])] if result["method"] in MAIN_ROWS else []

    table = cells(paths, rows_of)
    order = {row: i for i, row in enumerate(MAIN_ROWS)}
    return table.sort_index(key=lambda index: index.map(order) if index.name == "row" else index)


def transfer_table(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """The task-transfer table: eval JSONs of ``seeking_from_<task>`` rows -> rows (pair, extracted from)."""

    def rows_of(result: dict[str, Any]) -> list[tuple[str, str]]:
        source = transfer_source(result["method"])
        if source is None:
            raise ValueError(f"method {result['method']!r} is not a transfer row (seeking_from_<task>)")
        return [(result["pair"], source_label(source))]

    return cells(paths, rows_of).rename_axis(["pair", "extracted from"])


def with_published(table: pd.DataFrame, published: Mapping[str, Mapping[str, PublishedRow]]) -> pd.DataFrame:
    """``table`` with each row that has a published counterpart (``published[pair][row]``) followed by it and by
    reproduced - published (a third index level: reproduced, published, difference)."""
    parts = []
    for (pair, row), values in table.iterrows():
        parts.append(values.rename((pair, row, "reproduced")))
        printed = published.get(pair, {}).get(row)
        if printed is not None:
            shown = pd.Series({c: printed.scores.get(c) for c in values.index}, dtype=float)
            parts += [shown.rename((pair, row, "published")), (values - shown).rename((pair, row, "difference"))]
    out = pd.DataFrame(parts)
    out.index = pd.MultiIndex.from_tuples(out.index, names=[*table.index.names, "value"])
    return out


# The ablation table's columns: a row's average over the columns evaluated, and that minus the full method's.
AVG, VS_FULL = "Avg", "Avg - full"


def ablation_table(paths: Iterable[str | os.PathLike[str]], switches: Iterable[str]) -> pd.DataFrame:
    """Seeking's ablations: eval JSONs of the ``seeking`` row (the full method) and the ``seeking_<switch>_<variant>``
    rows -> rows (pair, switch, variant) in the published charts' order, the full method last under each switch,
    with :data:`AVG` over the columns evaluated and :data:`VS_FULL`. A variant the paper charts but no row
    reproduces ("neuron") is empty."""

    def rows_of(result: dict[str, Any]) -> list[tuple[str, str]]:
        if result["method"] == "seeking":
            return [(result["pair"], "full")]
        found = ablation_of(result["method"])
        if found is None:
            raise ValueError(f"method {result['method']!r} is neither seeking nor an ablation row")
        return [(result["pair"], "{}_{}".format(*found))]

    scores = cells(paths, rows_of)
    average = scores[[c for c in COLUMNS if c in scores.columns]].mean(axis=1, skipna=False)
    records = []
    for pair in dict.fromkeys(scores.index.get_level_values("pair")):
        full = average.get((pair, "full"), float("nan"))
        for switch in switches:
            for variant in ABLATIONS[switch]:
                value = average.get((pair, "full" if variant == FULL[switch] else f"{switch}_{variant}"), float("nan"))
                records.append({"pair": pair, "switch": switch, "variant": variant, AVG: value, VS_FULL: value - full})
    return pd.DataFrame.from_records(records).set_index(["pair", "switch", "variant"])


def published_bar(switch: str, variant: str, i: int) -> pd.Series:
    """The published bar of one variant for pair ``i`` of :data:`ABLATION_PAIRS`: its Avg and Avg - full."""
    bars = ABLATIONS[switch]
    return pd.Series({AVG: bars[variant][i], VS_FULL: bars[variant][i] - bars[FULL[switch]][i]})


def ablation_with_published(table: pd.DataFrame, matched: Mapping[str, int | None], complete: bool) -> pd.DataFrame:
    """``table`` with the published bars under each row: for a pair whose checkpoints are one of Seeking's
    ablation pairs (``matched[pair]``: its index in :data:`ABLATION_PAIRS`), the published row and reproduced -
    published (of Avg only where ``complete``: all seven columns evaluated, as the published Avg is); for any
    other pair, both published pairs' rows, for reference."""
    parts = []
    for (pair, switch, variant), values in table.iterrows():
        parts.append(values.rename((pair, switch, variant, "reproduced")))
        i = matched.get(pair)
        if i is None:
            parts += [published_bar(switch, variant, j).rename((pair, switch, variant, f"published {name}"))
                      for j, name in enumerate(ABLATION_PAIR_NAMES)]
            continue
        difference = values - published_bar(switch, variant, i)
        if not complete:
            difference[AVG] = float("nan")
        parts += [published_bar(switch, variant, i).rename((pair, switch, variant, "published")),
                  difference.rename((pair, switch, variant, "difference"))]
    out = pd.DataFrame(parts)
    out.index = pd.MultiIndex.from_tuples(out.index, names=[*table.index.names, "value"])
    return out


def ablation_pairs(pairs: Mapping[str, Mapping[str, str]], repo_ids: Mapping[str, str | None]) -> dict[str, int | None]:
    """{pair: its index in :data:`ABLATION_PAIRS` (the published bars' pairs), or None}."""
    keys = {key: i for i, key in enumerate(ABLATION_PAIRS)}
    return {pair: keys.get((repo_ids.get(spec["teacher"]), repo_ids.get(spec["student"])))
            for pair, spec in pairs.items()}


def published_rows(pairs: Mapping[str, Mapping[str, str]], repo_ids: Mapping[str, str | None],
                   transfer: bool = False) -> dict[str, Mapping[str, PublishedRow]]:
    """{pair: {row: published row}} of the pairs whose (teacher, student) repo ids are one of Seeking's: Table 1's
    rows, or (``transfer``) the task-transfer table's, which only Llama-2 13B -> 7B has."""
    out = {}
    for pair, spec in pairs.items():
        key = (repo_ids.get(spec["teacher"]), repo_ids.get(spec["student"]))
        if transfer and key == (LLAMA2_13B, LLAMA2_7B):
            out[pair] = TRANSFER
        elif not transfer and key in PUBLISHED:
            out[pair] = PUBLISHED[key]
    return out


def write_table(table: pd.DataFrame, csv: str, md: str, tex: str, caption: str, source: str = SOURCE) -> None:
    """A table as csv (full precision), markdown and LaTeX (two decimals, "--" where empty) through the project's
    one writer (:func:`pkt.report.latex.write_table`: escaped cells, index and caption), the caption naming the
    published source."""
    stem = Path(csv).with_suffix("")
    if (Path(md), Path(tex)) != (stem.with_suffix(".md"), stem.with_suffix(".tex")):
        raise ValueError(f"{csv}, {md} and {tex} must share one stem")
    latex.write_table(table, stem, f"{caption.rstrip(' .')}. Published values: {source}.", index=True,
                      float_format="{:.2f}", na_rep="--")
