"""Every table the pipeline writes, built from names that break LaTeX ('%', '_', '&', '#', '$', braces), through the
one writer (pkt.report.latex.write_table): the .tex is escaped (always checked, token by token) and compiles with a
real LaTeX (pdflatex / lualatex, where installed; skipped otherwise), the rows name their models, the columns their
metric and n, the captions each pair's protocol, and a row that copies another is footnoted with why."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pkt.methods.semalign.ablation import ablation_table, write_ablation
from pkt.report.latex import PREAMBLE, latex_escape, write_table
from pkt.report.noted import write_noted_table
from pkt.report.published import LLAMA2_7B_CHAT, LLAMA2_13B_CHAT, published_cells
from pkt.report.published_tables import code_teacher_table, main_with_published, published_note, write_code_teachers
from pkt.report.tables import (
    describe_results,
    identical_rows,
    load_items,
    load_results,
    main_table,
    vs_reference,
    write_tables,
    write_vs_reference,
)
from pkt.transfer_probe import probe_table

ODD = "odd_pair%&#"  # a pair, models, a task, a method and labels named with what LaTeX would misread
PAIRS = {"chat": {"teacher": "llama13", "student": "llama7"}, ODD: {"teacher": "big_t%", "student": "small_s&#"}}
MODELS = {"llama13": {"hub": {"repo_id": LLAMA2_13B_CHAT}}, "llama7": {"hub": {"repo_id": LLAMA2_7B_CHAT}},
          "big_t%": {"tokenizer": "toy"}, "small_s&#": {"tokenizer": "toy"}}
ODD_TASK = "paper_odd_task_50%&#"  # a task of its own column, 'odd_task_50%&#'
ODD_METHOD = "my_method_#1"  # scores every item as LoRA does: a copy of a trained row
CAPTION = "Run odd_run: 95% of {x} & #1 ~ ^ \\ $5 _under_"
# (task, metric, protocol) per task; ODD's own task under a protocol with specials of its own
TASKS = [("toy_mmlu", "acc", "toy chat format"), ("toy_humaneval", "pass_at_1", "toy chat format"),
         (ODD_TASK, "exact_match", "100% custom_prompt & #2")]
SPECIALS = "%_&#$^~"


def write_eval(root: Path, method: str, slot: str, task: str, seed: int, scores: list[float], model: dict,
               metric: str, protocol: str) -> Path:
    """One eval JSON as the evaluate rule writes it (toy_mmlu's first half held out, the rest control)."""
    groups = ["held_out"] * 5 + ["control"] * 5 if task == "toy_mmlu" else [None] * len(scores)
    subsets = {g: {"value": sum(s for s, h in zip(scores, groups) if h == g) / 5, "n": 5}
               for g in ("held_out", "control")} if task == "toy_mmlu" else {}
    path = root / method / slot / task / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "method": method, "pair": slot, "task": task, "seed": seed, "value": sum(scores) / len(scores),
        "n": len(scores), "metric": metric, "protocol": protocol, "model": model, "subsets": subsets,
        "items": {"id": [f"{task}-{i}" for i in range(len(scores))], "score": scores, "group": groups}}))
    return path


def pattern(k: int) -> list[float]:
    """Ten item scores, the first k right."""
    return [1.0] * k + [0.0] * (10 - k)


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    """Every table file, written by the functions the rules call, from the results of two pairs: the papers'
    Llama-2 pair (hub ids: published rows beside the reproduced ones) and ODD (toy models, odd names)."""
    root = tmp_path_factory.mktemp("results")
    out = root / "tables"
    evals = []
    for pair, spec in PAIRS.items():
        protocol_of = {t: ("tulu" if pair == "chat" else p) for t, _, p in TASKS}
        tasks = [(t, m) for t, m, _ in TASKS if pair == ODD or t != ODD_TASK]
        for role, k in (("student", 4), ("teacher", 8)):
            name = spec[role]
            model = {"name": name, **({"repo_id": MODELS[name]["hub"]["repo_id"]} if "hub" in MODELS[name] else {})}
            evals += [write_eval(root, "vanilla", name, t, 0, pattern(k), model, m, protocol_of[t]) for t, m in tasks]
        student = {"name": spec["student"]}
        rows = {"lora": [5, 6], "laten": [4, 4], ODD_METHOD: [5, 6]} if pair == ODD else {"lora": [5, 7],
                                                                                             "semalign": [6, 6]}
        evals += [write_eval(root, row, pair, t, seed, pattern(k), student, m, protocol_of[t])
                  for row, ks in rows.items() for seed, k in enumerate(ks) for t, m in tasks]
    table = main_table(load_results(evals, PAIRS))
    items = load_items(evals, PAIRS)
    info = describe_results(evals, PAIRS)
    cells = published_cells(PAIRS, MODELS)
    copies = identical_rows(items)
    assert copies == {(ODD, "laten"): "student", (ODD, ODD_METHOD): "lora"}  # found from the items, for any row
    write_tables(table, out / "main.csv", out / "main.md", out / "main.tex", root / "metrics.json",
                 f"{CAPTION}. {published_note(cells, 'tulu')}", shown=main_with_published(table, cells, "tulu",
                                                                                          info.models),
                 identical=copies, info=info)
    versus = vs_reference(items, n_boot=200)
    write_vs_reference(versus, out / "vs_lora.csv", out / "vs_lora.md", out / "vs_lora.tex", CAPTION, info=info)
    empty = vs_reference(items[items["row"] != "lora"], n_boot=10)
    write_vs_reference(empty, out / "vs_none.csv", out / "vs_none.md", out / "vs_none.tex", CAPTION, info=info)
    code = code_teacher_table(table, PAIRS, MODELS, cells)
    write_code_teachers(code, out / "code_teachers.csv", out / "code_teachers.md", CAPTION, info=info,
                        identical=copies)
    write_code_teachers(code.iloc[:0], out / "code_none.csv", out / "code_none.md", CAPTION, info=info)
    mmlu = [p for p in evals if p.parent.name == "toy_mmlu"]
    runs = root / "ablation"
    odd = {"name": "small_s&#"}
    configured = [write_eval(runs, "semalign", ODD, "toy_mmlu", s, pattern(k), odd, "acc", "toy chat format")
                  for s, k in ((0, 5), (1, 7))]
    ablated = [write_eval(runs, slug, ODD, "toy_mmlu", 0, pattern(k), odd, "acc", "toy chat format")
               for slug, k in (("layer-only", 9), ("interpolation-off", 5))]
    labels = {"semalign": "as configured (50% _logit_ & #1)", "layer-only": "layer_term only {100%}",
              "interpolation-off": "[interp] off_#"}
    ablation = ablation_table(configured, ablated, labels, PAIRS, n_boot=100, level=0.95, seed=0)
    write_ablation(ablation, out / "semalign_ablation.csv", out / "semalign_ablation.md",
                   out / "semalign_ablation.tex", f"{CAPTION}. Ablation on toy_mmlu")
    student = [p for p in mmlu if p.parts[-4] == "vanilla" and p.parent.parent.name == "small_s&#"]
    probed = [str(p) for p in mmlu if p.parent.parent.name == ODD and p.parts[-4] in ("lora", ODD_METHOD)]
    probe = probe_table([str(p) for p in student], probed, {ODD: PAIRS[ODD]}, n_boot=100, level=0.95, seed=0)
    write_noted_table(probe, out / "transfer_probe.csv", out / "transfer_probe.md", out / "transfer_probe.tex",
                      f"{CAPTION}. Probe", label="tab:transfer-probe")
    seeking = pd.DataFrame([[45.0, None], [44.2, 17.8], [0.8, -2.8]], columns=pd.MultiIndex.from_tuples(
        [("GSM8K_0%", "EM & #"), ("GSM8K_0%", "ROUGE_L")]), index=pd.MultiIndex.from_tuples(
        [(ODD, "student", "reproduced"), (ODD, "student", "published"), (ODD, "student", "difference")],
        names=["pair_%", "row", "value"]))
    write_table(seeking, out / "seeking_like", f"{CAPTION}. Published values: Seeking_Nuggets 100%", index=True,
                float_format="%.2f", na_rep="--", footnotes=["Note_1: 5% & #"])
    return out


def unescaped(text: str) -> list[tuple[int, str]]:
    """(line, char) of every character LaTeX treats as special that is not escaped, outside comment lines; braces
    are checked by :func:`brace_depths`. A backslash takes the control word or symbol after it."""
    found = []
    for number, line in enumerate(text.splitlines()):
        if line.startswith("%"):
            continue
        i = 0
        while i < len(line):
            ch = line[i]
            if ch == "\\":
                i += 1
                while i < len(line) and line[i].isalpha():
                    i += 1
                i += 0 if i > 0 and line[i - 1].isalpha() else 1
                continue
            if ch in SPECIALS:
                found.append((number, ch))
            i += 1
    return found


def brace_depths(line: str) -> list[int]:
    """The brace depth after each character of ``line`` (escaped braces do not count)."""
    depth, depths, i = 0, [], 0
    while i < len(line):
        if line[i] == "\\":
            depths += [depth, depth]
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(line[i], 0)
        depths.append(depth)
        i += 1
    return depths


def test_every_table_is_escaped_for_latex(tables):
    """No unescaped %, _, #, $, ^, ~ anywhere; '&' only between columns (as many per row as the column spec
    says); braces balanced on every line; the caption's closing brace is its own, not commented out."""
    texs = sorted(tables.glob("*.tex"))
    assert {p.stem for p in texs} == {"main", "vs_lora", "vs_none", "code_teachers", "code_none",
                                      "semalign_ablation", "transfer_probe", "seeking_like"}
    for path in texs:
        text = path.read_text()
        stray = [(n, ch) for n, ch in unescaped(text) if ch != "&"]
        assert not stray, f"{path.name}: unescaped {stray}"
        columns = len(re.search(r"\\begin\{tabular\}\{([lrc]+)\}", text).group(1))
        rows = text.split("\\toprule\n", 1)[1].split("\\bottomrule", 1)[0].splitlines()
        for line in (r for r in rows if r.endswith("\\\\") and "\\multicolumn" not in r):
            assert sum(ch == "&" for _, ch in unescaped(line)) == columns - 1, f"{path.name}: {line}"
        for line in text.splitlines():
            depths = brace_depths(line)
            assert min(depths, default=0) >= 0 and (not depths or depths[-1] == 0), f"{path.name}: {line}"
        caption = next(line for line in text.splitlines() if line.startswith("\\caption{"))
        depths = brace_depths(caption)
        opened = len("\\caption{") - 1
        assert min(depths[opened:-1]) >= 1 and depths[-1] == 0  # the caption's brace closes at its end, only there
        assert latex_escape(CAPTION) in caption and "95\\% of \\{x\\} \\& \\#1" in caption
        assert "$" not in text.replace("\\$", "")  # no math mode: ± and † are \ensuremath / \textsuperscript
    main = (tables / "main.tex").read_text()
    assert "odd\\_task\\_50\\%\\&\\# exact match (n=10)" in main and "Student (small\\_s\\&\\#)" in main
    ablation = (tables / "semalign_ablation.tex").read_text()
    assert "\n{}[interp] off\\_\\# \\textsuperscript{\\dag} &" in ablation  # a leading '[' braced: no \\\\[...]


def test_markdown_tables_keep_their_columns(tables):
    """Every line of a Markdown table has as many column breaks as its header (a '|' in a cell is escaped)."""
    for path in tables.glob("*.md"):
        lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in lines}
        assert len(counts) <= 1, path.name


def test_rows_name_their_models_columns_their_metric_and_n_captions_their_protocol(tables):
    md = (tables / "main.md").read_text()
    models = {tuple(cell.strip() for cell in line.split("|")[1:3]) for line in md.splitlines() if line.startswith("|")}
    assert {("chat", f"Student ({LLAMA2_7B_CHAT})"), ("chat", f"Teacher ({LLAMA2_13B_CHAT})")} <= models  # hub ids
    assert {(ODD, "Student (small_s&#)"), (ODD, "Teacher (big_t%)")} <= models  # a toy model's config name
    header = next(line for line in md.splitlines() if line.startswith("| Pair"))
    assert "MMLU acc (n=10)" in header and "MMLU held-out acc (n=5)" in header and "HumanEval pass@1 (n=10)" in header
    assert "odd_task_50%&# exact match (n=10)" in header
    assert "Evaluation protocol, pair chat: Open-Instruct/Tulu 0-shot; pair odd_pair%&#: toy chat format (MMLU, " \
           "HumanEval); 100% custom_prompt & #2 (odd_task_50%&#)." in md
    for name in ("vs_lora", "code_teachers", "transfer_probe", "semalign_ablation"):
        assert "Evaluation protocol, pair" in (tables / f"{name}.md").read_text(), name
    csv = pd.read_csv(tables / "main.csv", keep_default_na=False)
    assert list(csv.columns[:3]) == ["Pair", "Model", "MMLU"]  # the CSV keeps the bare column names


def test_identical_rows_are_footnoted_with_why(tables):
    """LaTen copies the untrained student (its training changed no answer); the odd method copies LoRA (the change
    altered no answer): each row marked, each footnoted under the table, in every table that shows it."""
    md = (tables / "main.md").read_text()
    body, notes = md.split("\n\n")[1], md.split("\n\n")[2:]
    marked = {tuple(cell.strip() for cell in line.split("|")[1:3]) for line in body.splitlines()}
    assert {(ODD, "LaTen †"), (ODD, f"{ODD_METHOD} †")} <= marked and (ODD, "LoRA") in marked
    assert any("† LaTen is identical to Student on every item, task and seed: its training left the untrained "
               "Student's answers unchanged" in n for n in notes)
    assert any(f"† {ODD_METHOD} is identical to LoRA on every item, task and seed: the change altered no answer"
               in n for n in notes)
    assert "textsuperscript{\\dag} LaTen" in (tables / "main.tex").read_text()
    assert "† LaTen" in (tables / "vs_lora.md").read_text()
    code = (tables / "code_teachers.md").read_text()
    assert "20.00 ± 0.00 †" not in code and "40.00 ± 0.00 †" in code  # LaTen's cell of ODD, not of chat
    assert code.rstrip().endswith("not evidence about its own method.")


def engines() -> list:
    return [pytest.param(e, marks=pytest.mark.skipif(shutil.which(e) is None, reason=f"{e} is not installed"))
            for e in ("pdflatex", "lualatex")]


@pytest.mark.parametrize("engine", engines())
def test_every_table_compiles(tables, tmp_path, engine):
    """A minimal document (pkt.report.latex.PREAMBLE: fontenc, inputenc, booktabs) that inputs every .tex file the
    writer made compiles without an error."""
    texs = sorted(tables.glob("*.tex"))
    doc = tmp_path / "tables.tex"
    doc.write_text("\\documentclass{article}\n" + PREAMBLE + "\\begin{document}\n"
                   + "".join(f"\\input{{{p.as_posix()}}}\n\\clearpage\n" for p in texs) + "\\end{document}\n")
    proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", doc.name],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = (tmp_path / "tables.log").read_text(errors="replace") if (tmp_path / "tables.log").is_file() else ""
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 0
    assert "LaTeX Error" not in log and "Missing character" not in log  # every glyph in the fonts, no error
