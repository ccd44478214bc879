"""One writer for every table: a frame -> ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex``, each written atomically.

Every table of a run (main, vs-reference, code teachers, SemAlign ablation, transfer probe, Seeking's) goes through
:func:`write_table`, so that what makes a file unreadable is handled once: LaTeX's special characters are escaped in
every cell, index label, column name, caption and footnote (a '%' in '95%' would comment out the caption's closing
brace, a bare '_' in 'toy_mmlu' is a math-mode error), the few non-ASCII signs the tables print (±, †, −, –) become
LaTeX commands, and a cell that starts with '[' or '*' cannot be read as an argument of the row end or of a rule. The
.tex then compiles with pdflatex as well as lualatex given only ``\\usepackage{booktabs}`` (:data:`PREAMBLE`).
Markdown escapes '|' (a column break); the CSV keeps the raw values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pkt.io import atomic_path, write_text

# The packages a document needs around the tables (the .tex files say so in their first line).
PREAMBLE = "\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n\\usepackage{booktabs}\n"
SPECIAL = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
           ">": r"\textgreater{}", "|": r"\textbar{}", **{ch: "\\" + ch for ch in "&%$#_{}"}}
# A cell printed as a number: '40.24', '38.97 ± 1.53', '+1.27 [-3.31, +5.85]*', '17.10 ± 0.52 (20.12)', '20.00 †'.
NUMBERISH = re.compile(r"^\(?[+\-−]?\d[\d.,]*\)?(?: ± [\d.]+)?(?: \[[^\]]*\])?\*?(?: \([\d.,]+\))?(?: [†‡])?$")
# Non-ASCII signs the tables use, as commands that need no package beyond the LaTeX kernel.
UNICODE = {"±": r"\ensuremath{\pm}", "†": r"\textsuperscript{\dag}", "‡": r"\textsuperscript{\ddag}",
           "−": r"\ensuremath{-}", "–": "--", "—": "---", "×": r"\ensuremath{\times}", "≤": r"\ensuremath{\leq}",
           "≥": r"\ensuremath{\geq}", "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''",
           "\u00a0": "~", "\n": " ", "\r": " ", "\t": " "}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX text: its special characters escaped and the signs of :data:`UNICODE` replaced."""
    return "".join(SPECIAL.get(ch) or UNICODE.get(ch) or ch for ch in str(text))


def latex_caption(text: str) -> str:
    """``text`` escaped for a caption (:func:`latex_escape`): '%' would comment out the rest of the caption and its
    closing brace, '_' in 'toy_mmlu' needs math mode. Kept by this name for its callers (Seeking's tables)."""
    return latex_escape(text)


def _cell_text(value: Any, float_format: str, na_rep: str) -> str:
    """A cell as text: floats by ``float_format`` ('{:.2f}' or '%.2f'), missing values as ``na_rep``, anything else
    by ``str``."""
    if value is None or (not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)):
        return na_rep
    if isinstance(value, float):
        return float_format.format(value) if "{" in float_format else float_format % value
    return str(value)


def _latex_cell(text: str) -> str:
    """An escaped cell; a leading '[' or '*' is braced, else ``\\\\`` or a booktabs rule reads it as an argument."""
    escaped = latex_escape(text)
    return "{}" + escaped if escaped[:1] in ("[", "*") else escaped


def _numeric(column: pd.Series) -> bool:
    """Whether a column holds numbers, or only cells printed as numbers ('38.97 ± 1.53', '+1.27 [-3.31, +5.85]*',
    '17.10 ± 0.52 (20.12)', '' for none): those align right, so that their decimal points line up."""
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_numeric_dtype(column):
        return True
    cells = [v for v in column[column.notna()] if not (isinstance(v, str) and v == "")]
    return bool(cells) and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                               or isinstance(c, str) and NUMBERISH.match(c) for c in cells)


def _flat(frame: pd.DataFrame, index: bool, float_format: str,
          na_rep: str) -> tuple[list[tuple[str, ...]], list[list[str]], list[bool]]:
    """(column labels as tuples, one entry per level; rows of raw cell texts; numeric flag per column). With
    ``index`` the index levels lead, headed by the index's names, and a label repeated from the row above (under
    the same outer labels) is left blank, as pandas shows a MultiIndex."""
    levels = frame.columns.nlevels
    columns = [tuple(str(x) for x in (c if isinstance(c, tuple) else (c,))) for c in frame.columns]
    numeric = [_numeric(frame.iloc[:, i]) for i in range(frame.shape[1])]
    rows = [[_cell_text(v, float_format, na_rep) for v in values]
            for values in frame.itertuples(index=False, name=None)]
    if not index:
        return columns, rows, numeric
    names = [str(n) if n is not None else "" for n in frame.index.names]
    keys = [tuple(k) if isinstance(k, tuple) else (k,) for k in frame.index]
    lead = []
    for i, key in enumerate(keys):
        above = keys[i - 1] if i else None
        lead.append(["" if above is not None and j < len(key) - 1 and key[: j + 1] == above[: j + 1]
                     else _cell_text(k, float_format, na_rep) for j, k in enumerate(key)])
    heads = [tuple([""] * (levels - 1) + [n]) for n in names]
    return heads + columns, [a + r for a, r in zip(lead, rows)], [False] * len(names) + numeric


def _spans(labels: list[tuple[str, ...]], level: int) -> list[tuple[str, int, int]]:
    """(label, first column, width) runs of equal labels at ``level`` under equal outer labels."""
    runs: list[tuple[str, int, int]] = []
    for i, lab in enumerate(labels):
        if runs and labels[runs[-1][1]][: level + 1] == lab[: level + 1]:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((lab[level], i, 1))
    return runs


def latex_table(frame: pd.DataFrame, caption: str = "", label: str | None = None, footnotes: Sequence[str] = (),
                index: bool = False, float_format: str = "{:.2f}", na_rep: str = "") -> str:
    """``frame`` as a LaTeX ``table`` (booktabs rules): caption, label, the tabular, then each footnote in small
    type below it. Columns of any MultiIndex get one header row per level (a run of equal labels spans its
    columns, ruled below); with ``index`` the index levels are the leading columns. Numeric columns align right."""
    labels, rows, numeric = _flat(frame, index, float_format, na_rep)
    spec = "".join("r" if n else "l" for n in numeric) or "l"
    lines = [f"% pkt.report.latex.write_table: needs {PREAMBLE.strip().splitlines()[-1]}", "\\begin{table}",
             "\\centering"]
    if caption:
        lines.append(f"\\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(f"\\label{{{label}}}")
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    depth = max((len(c) for c in labels), default=1)
    for level in range(depth):
        runs = _spans(labels, level) if level < depth - 1 else [(c[level], i, 1) for i, c in enumerate(labels)]
        cells = [_latex_cell(text) if width == 1 else f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(text)}}}"
                 for text, _, width in runs]
        lines.append(" & ".join(cells) + " \\\\")
        rules = [f"\\cmidrule(lr){{{first + 1}-{first + width}}}" for text, first, width in runs
                 if width > 1 and text]
        if rules:
            lines.append(" ".join(rules))
    lines.append("\\midrule")
    lines += [" & ".join(_latex_cell(c) for c in row) + " \\\\" for row in rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if footnotes:
        notes = "\\par\n".join(latex_escape(n) for n in footnotes)
        lines += ["\\par\\smallskip", f"{{\\footnotesize {notes}\\par}}"]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def _markdown_cell(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def markdown_table(frame: pd.DataFrame, index: bool = False, float_format: str = "{:.2f}", na_rep: str = "") -> str:
    """``frame`` as a pipe table: the levels of a MultiIndex column label joined by spaces, '|' escaped, columns of
    numbers aligned right and of text (formatted cells too, as the tables have always shown them) left, cells as
    :func:`_cell_text` writes them (no number re-parsing: '0.00' stays '0.00')."""
    labels, rows, numeric = _flat(frame, index, float_format, na_rep)
    lead = len(labels) - frame.shape[1]  # index columns, text
    numeric = [False] * lead + [pd.api.types.is_numeric_dtype(frame.iloc[:, i])
                                and not pd.api.types.is_bool_dtype(frame.iloc[:, i]) for i in range(frame.shape[1])]
    head = [_markdown_cell(" ".join(x for x in lab if x)) for lab in labels]
    body = [[_markdown_cell(c) for c in row] for row in rows]
    widths = [max([3, len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if n else ":" + "-" * (w + 1) for w, n in zip(widths, numeric)) + "|"
    return "\n".join([line(head), rule, *(line(r) for r in body)])


def label_of(stem: str | os.PathLike[str]) -> str:
    """'results/toy/tables/vs_lora' -> 'tab:vs-lora': a LaTeX label made of letters, digits, ':' and '-' only."""
    return "tab:" + re.sub(r"[^A-Za-z0-9-]+", "-", Path(stem).name).strip("-")


def stem_of(csv: str | os.PathLike[str], md: str | os.PathLike[str], tex: str | os.PathLike[str]) -> Path:
    """The common stem of three output paths (``main.csv``, ``main.md``, ``main.tex`` -> ``main``), as the rules
    name them; ValueError when they do not share one, since :func:`write_table` writes ``<stem>.<format>``."""
    stems = {Path(p).with_suffix("") for p in (csv, md, tex)}
    suffixes = [Path(p).suffix for p in (csv, md, tex)]
    if len(stems) != 1 or suffixes != [".csv", ".md", ".tex"]:
        raise ValueError(f"table files {csv}, {md}, {tex} are not <stem>.csv, <stem>.md, <stem>.tex of one stem")
    return stems.pop()


def write_table(frame: pd.DataFrame, stem: str | os.PathLike[str], caption: str, *, label: str | None = None,
                footnotes: Sequence[str] = (), raw: pd.DataFrame | None = None, index: bool = False,
                float_format: str = "{:.2f}", na_rep: str = "") -> dict[str, Path]:
    """Write ``frame`` as ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex``, each atomically; returns their paths.

    ``caption`` heads the Markdown and is the LaTeX caption; ``footnotes`` (e.g. why a row is marked †) follow the
    table in both. The CSV holds ``raw`` when given (the raw numbers behind formatted cells), else ``frame``; with
    ``index`` the index levels are written as leading columns in all three. ``label`` defaults to
    :func:`label_of` ``(stem)``. Floats are printed with ``float_format`` and missing cells as ``na_rep`` in the
    Markdown and LaTeX; the CSV keeps full precision.
    """
    stem = Path(stem)
    paths = {fmt: stem.with_name(f"{stem.name}.{fmt}") for fmt in ("csv", "md", "tex")}
    with atomic_path(paths["csv"]) as tmp:
        (frame if raw is None else raw).to_csv(tmp, index=index)
    table = markdown_table(frame, index=index, float_format=float_format, na_rep=na_rep)
    notes = "".join(f"\n{note}\n" for note in footnotes if note)
    write_text(paths["md"], f"{caption}\n\n{table}\n{notes}" if caption else f"{table}\n{notes}")
    write_text(paths["tex"], latex_table(frame, caption, label or label_of(stem), [n for n in footnotes if n],
                                         index=index, float_format=float_format, na_rep=na_rep))
    return paths
