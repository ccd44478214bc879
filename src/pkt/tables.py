"""Comparison tables in the layout of the papers' Table 1 (pandas).

Rows: Student, Teacher (the vanilla models), then LoRA and each transfer method that has run;
columns: the four benchmarks, their average, and the gap to the teacher (SemAlign's "average gap":
the mean over benchmarks of |teacher - row|). Scores are percentages, mean +- std over seeds. Methods
that have not run are absent, never filled in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from pkt.io import atomic_path, write_json, write_text

BENCHMARKS = {"mmlu": "MMLU", "gsm8k": "GSM8K", "humaneval": "HumanEval", "mbpp": "MBPP"}
ROWS = {"student": "Student", "teacher": "Teacher", "lora": "LoRA", "seeking": "Seeking", "semalign": "SemAlign",
        "laten": "LaTen", "kd": "KD"}


def benchmark_of(task: str) -> str:
    """'toy_gsm8k' / 'paper_gsm8k' -> 'GSM8K'."""
    key = task.split("_", 1)[-1]
    if key not in BENCHMARKS:
        raise ValueError(f"task {task!r} is not one of the four benchmarks {sorted(BENCHMARKS)}")
    return BENCHMARKS[key]


def load_results(paths: Iterable[str | os.PathLike[str]], pairs: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Eval JSONs -> a tidy frame: pair, row (Student/Teacher/method), benchmark, seed, score (%)."""
    records = []
    for path in paths:
        r = json.loads(Path(path).read_text())
        if r["method"] == "vanilla":  # the pair slot names the model: a row of every pair it belongs to
            roles = ("student", "teacher")
            targets = [(p, role) for p, spec in pairs.items() for role in roles if spec[role] == r["pair"]]
        else:
            targets = [(r["pair"], r["method"])]
        for pair, key in targets:
            records.append({"pair": pair, "row": key, "benchmark": benchmark_of(r["task"]), "seed": r["seed"],
                            "score": 100.0 * r["value"], "n": r["n"]})
    df = pd.DataFrame.from_records(records, columns=["pair", "row", "benchmark", "seed", "score", "n"])
    return df.sort_values(["pair", "row", "benchmark", "seed"], ignore_index=True)


def main_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Indexed by (pair, row) in the papers' row order; columns (stat, column) for stat in mean/std/seeds."""
    order = {k: i for i, k in enumerate(ROWS)}
    benchmarks = [b for b in BENCHMARKS.values() if b in set(tidy["benchmark"])]
    per_seed = tidy.pivot_table(index=["pair", "row", "seed"], columns="benchmark", values="score")[benchmarks]
    per_seed["Average"] = per_seed.mean(axis=1, skipna=False)
    grouped = per_seed.groupby(level=["pair", "row"])
    mean, std = grouped.mean(), grouped.std(ddof=1)
    gaps = {}
    for pair, row in mean.index:
        if (pair, "teacher") in mean.index:
            diff = mean.loc[(pair, "teacher"), benchmarks] - mean.loc[(pair, row), benchmarks]
            gaps[(pair, row)] = float(diff.abs().mean())
    mean["Gap to teacher"] = pd.Series(gaps, dtype=float)
    table = pd.concat({"mean": mean, "std": std}, axis=1)
    table[("seeds", "")] = grouped.size()
    ranks = [(pair, order.get(row, len(order))) for pair, row in table.index]
    return table.iloc[sorted(range(len(table)), key=ranks.__getitem__)]


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
                 tex: str | os.PathLike[str], metrics: str | os.PathLike[str], caption: str) -> None:
    """Write the table as CSV, Markdown and LaTeX, and the flat metrics JSON, atomically."""
    shown = formatted(table)
    with atomic_path(csv) as tmp:
        shown.to_csv(tmp, index=False)
    write_text(md, f"{caption}\n\n" + shown.to_markdown(index=False) + "\n")
    write_text(tex, shown.to_latex(index=False, caption=caption, label="tab:main", escape=True))
    write_json(metrics, flat_metrics(table))
