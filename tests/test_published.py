"""The papers' published numbers beside reproduced ones: known answers from methods.md (SemAlign v1 Tables 1-2)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pkt.report.published import (
    CODELLAMA_13B_PYTHON,
    LLAMA2_7B_CHAT,
    LLAMA2_13B_CHAT,
    PUBLISHED,
    WIZARDCODER_13B_PYTHON,
    protocol_label,
    published_cells,
    repo_id,
)
from pkt.report.published_tables import (
    CODE_COLUMNS,
    code_teacher_table,
    differences,
    main_with_published,
    published_note,
    published_table,
    write_code_teachers,
)
from pkt.report.tables import formatted, main_table, write_tables

BENCHES = ["MMLU", "GSM8K", "HumanEval", "MBPP"]


def hub(repo: str) -> dict:
    return {"tokenizer": "llama2", "hidden_size": 4096, "hub": {"repo_id": repo, "revision": "main"}}


MODELS = {
    "llama13": hub(LLAMA2_13B_CHAT),
    "llama7": hub(LLAMA2_7B_CHAT),
    "codellama13": hub(CODELLAMA_13B_PYTHON),
    "wizard13": hub(WIZARDCODER_13B_PYTHON),
    "big": {"tokenizer": "toy", "hidden_size": 96},  # toy models: no hub key
    "small": {"tokenizer": "toy", "hidden_size": 64},
}
PAIRS = {
    "chat": {"teacher": "llama13", "student": "llama7"},
    "codellama": {"teacher": "codellama13", "student": "llama7"},
    "wizard": {"teacher": "wizard13", "student": "llama7"},
}
TOY = {"toy": {"teacher": "big", "student": "small"}}
# (pair, row) -> per-seed scores (%) on MMLU, GSM8K, HumanEval, MBPP; the means are round numbers
SCORES = {
    ("chat", "student"): [(45.0, 15.0, 14.0, 18.0)],
    ("chat", "teacher"): [(53.0, 21.0, 19.0, 19.0)],
    ("chat", "lora"): [(46.0, 20.0, 14.0, 18.0), (48.0, 22.0, 16.0, 20.0)],
    ("chat", "semalign"): [(50.0, 18.0, 16.0, 18.0), (51.0, 19.0, 17.0, 19.0), (52.0, 20.0, 18.0, 20.0)],
    ("chat", "seeking"): [(49.0, 27.0, 15.0, 20.0), (50.0, 28.0, 16.0, 21.0)],
    ("codellama", "student"): [(45.0, 15.0, 14.0, 18.0)],
    ("codellama", "teacher"): [(40.0, 10.0, 46.0, 38.0)],
    ("codellama", "semalign"): [(45.0, 16.0, 19.0, 22.0), (46.0, 17.0, 21.0, 24.0)],
    ("wizard", "student"): [(45.0, 15.0, 14.0, 18.0)],
    ("wizard", "teacher"): [(41.0, 12.0, 55.0, 40.0)],
    ("wizard", "laten"): [(44.0, 15.0, 14.0, 19.0)],
}


def tidy(scores: dict[tuple[str, str], list[tuple[float, ...]]]) -> pd.DataFrame:
    """``load_results``' frame for the given per-seed scores."""
    records = [
        {"pair": pair, "row": row, "benchmark": b, "seed": seed, "score": v, "n": 100}
        for (pair, row), seeds in scores.items()
        for seed, values in enumerate(seeds)
        for b, v in zip(BENCHES, values)
    ]
    return pd.DataFrame.from_records(records)


@pytest.fixture
def table() -> pd.DataFrame:
    return main_table(tidy(SCORES))


@pytest.fixture
def cells():
    return published_cells(PAIRS, MODELS)


def test_published_numbers_are_the_papers():
    table1 = PUBLISHED[(LLAMA2_13B_CHAT, LLAMA2_7B_CHAT)]
    assert {row: dict(r.scores) for row, r in table1.items()} == {
        "student": {"MMLU": 44.20, "GSM8K": 16.07, "HumanEval": 14.05, "MBPP": 17.80},
        "teacher": {"MMLU": 52.90, "GSM8K": 20.55, "HumanEval": 18.75, "MBPP": 19.20},
        "seeking": {"MMLU": 49.60, "GSM8K": 28.23, "HumanEval": 15.44, "MBPP": 20.60},
        "laten": {"MMLU": 44.40, "GSM8K": 20.47, "HumanEval": 14.63, "MBPP": 18.20},
        "semalign": {"MMLU": 50.30, "GSM8K": 19.21, "HumanEval": 17.34, "MBPP": 18.78},
    }
    assert {r.source for r in table1.values()} == {"SemAlign Table 1"}
    code = {
        teacher: {row: (r.scores["HumanEval"], r.scores["MBPP"]) for row, r in rows.items() if row != "student"}
        for (teacher, _), rows in PUBLISHED.items()
        if teacher != LLAMA2_13B_CHAT
    }
    assert code == {
        CODELLAMA_13B_PYTHON: {
            "teacher": (47.56, 37.80),
            "seeking": (16.05, 21.40),
            "laten": (14.02, 17.80),
            "semalign": (20.12, 22.35),
        },
        WIZARDCODER_13B_PYTHON: {
            "teacher": (56.71, 41.60),
            "seeking": (15.04, 19.80),
            "laten": (14.02, 18.60),
            "semalign": (19.46, 21.18),
        },
    }
    for (teacher, _), rows in PUBLISHED.items():  # Table 2 reports code benchmarks only; no number is invented
        if teacher != LLAMA2_13B_CHAT:
            assert rows["student"] is table1["student"]
            assert all(set(r.scores) == {"HumanEval", "MBPP"} for row, r in rows.items() if row != "student")


def test_published_cells_apply_to_hub_pairs_only():
    assert repo_id(MODELS["big"]) is None and repo_id(MODELS["llama7"]) == LLAMA2_7B_CHAT
    assert published_cells(TOY, MODELS) == []
    cells = published_cells({**TOY, **PAIRS}, MODELS)
    per_pair = pd.Series([c.pair for c in cells]).value_counts().to_dict()
    assert per_pair == {"chat": 20, "codellama": 12, "wizard": 12}  # 5 rows x 4; student 4 + 4 rows x 2
    semalign = {(c.pair, c.benchmark): c.value for c in cells if c.row == "semalign"}
    assert semalign[("chat", "MMLU")] == 50.30 and semalign[("codellama", "HumanEval")] == 20.12
    # a student paired with an unpublished teacher, or a teacher with another student: nothing
    assert published_cells({"x": {"teacher": "llama13", "student": "small"}}, MODELS) == []
    assert published_cells({"x": {"teacher": "llama7", "student": "llama13"}}, MODELS) == []
    # the hub matches repo ids case-insensitively and redirects WizardCoder's old organisation
    renamed = {
        **MODELS,
        "llama7": hub("meta-llama/llama-2-7b-chat-hf"),
        "wizard13": hub("WizardLM/WizardCoder-Python-13B-V1.0"),
    }
    assert published_cells({"w": PAIRS["wizard"]}, renamed) == published_cells({"w": PAIRS["wizard"]}, MODELS)


def test_published_average_and_gap_are_the_papers(cells):
    published = published_table(cells, BENCHES)
    gaps = published["Gap to teacher"]
    assert gaps[("chat", "semalign")] == pytest.approx(1.4425)  # SemAlign: "averages 1.44 points"
    assert gaps[("chat", "seeking")] == pytest.approx(3.9225)  # "≈3.92"
    assert gaps[("chat", "laten")] == pytest.approx(3.425)  # "≈3.43"
    assert published["Average"][("chat", "semalign")] == pytest.approx((50.30 + 19.21 + 17.34 + 18.78) / 4)
    assert pd.isna(published["Average"][("codellama", "semalign")])  # Table 2: no MMLU or GSM8K
    assert pd.isna(gaps[("codellama", "student")])  # nor a teacher score on them


def test_difference_cells_are_reproduced_minus_published_exactly(table, cells):
    diff = differences(table, published_table(cells, BENCHES))
    assert list(diff.index) == [
        ("chat", "student"),
        ("chat", "teacher"),
        ("chat", "seeking"),
        ("chat", "semalign"),
        ("codellama", "student"),
        ("codellama", "teacher"),
        ("codellama", "semalign"),
        ("wizard", "student"),
        ("wizard", "teacher"),
        ("wizard", "laten"),
    ]
    semalign = diff.loc[("chat", "semalign")]
    assert semalign["MMLU"] == 51.0 - 50.30 and semalign["GSM8K"] == 19.0 - 19.21
    assert semalign["HumanEval"] == 17.0 - 17.34 and semalign["MBPP"] == 19.0 - 18.78
    assert diff.loc[("codellama", "semalign"), "HumanEval"] == 20.0 - 20.12
    assert diff.loc[("wizard", "laten"), "MBPP"] == 19.0 - 18.60
    assert pd.isna(diff.loc[("codellama", "semalign"), "MMLU"])
    reproduced_gap = table.loc[("chat", "semalign"), ("mean", "Gap to teacher")]  # (2 + 2 + 2 + 0) / 4
    assert reproduced_gap == 1.5 and semalign["Gap to teacher"] == pytest.approx(1.5 - 1.4425)


def test_main_table_gets_published_and_difference_rows_after_their_rows(table, cells):
    shown = main_with_published(table, cells, "tulu")
    chat = shown[shown["Pair"] == "chat"].set_index("Model")
    assert list(chat.index) == [
        "Student",
        "Student, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)",
        "Student, reproduced (Open-Instruct/Tulu 0-shot) − published",
        "Teacher",
        "Teacher, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)",
        "Teacher, reproduced (Open-Instruct/Tulu 0-shot) − published",
        "LoRA",  # nothing published
        "Seeking",
        "Seeking, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)",
        "Seeking, reproduced (Open-Instruct/Tulu 0-shot) − published",
        "SemAlign",
        "SemAlign, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)",
        "SemAlign, reproduced (Open-Instruct/Tulu 0-shot) − published",
    ]  # LaTen is published but did not run in this pair: no row
    published = chat.loc["SemAlign, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)"]
    assert published[BENCHES].tolist() == ["50.30", "19.21", "17.34", "18.78"]  # no std
    assert published["Gap to teacher"] == "1.44" and published["Seeds"] == ""
    assert chat.loc["SemAlign", "MMLU"] == "51.00 ± 1.00"
    diff = chat.loc["SemAlign, reproduced (Open-Instruct/Tulu 0-shot) − published"]
    assert diff[BENCHES].tolist() == ["+0.70", "-0.21", "-0.34", "+0.22"]
    code = shown[shown["Pair"] == "codellama"].set_index("Model")
    assert code.loc["SemAlign, published (SemAlign Table 2, Open-Instruct/Tulu 0-shot)", BENCHES].tolist() == [
        "",
        "",
        "20.12",
        "22.35",
    ]
    assert code.loc["Student, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)", "MMLU"] == "44.20"
    # the reproduced rows are formatted() as before
    reproduced = shown[~shown["Model"].str.contains("published")].reset_index(drop=True)
    assert reproduced.astype(str).equals(formatted(table).astype(str))


def test_run_protocol_labels_the_difference_rows_and_the_note(table, cells):
    assert protocol_label("tulu") == "Open-Instruct/Tulu 0-shot"
    assert protocol_label("chat_template") == "model chat template, 0-shot"
    with pytest.raises(ValueError, match="'alpaca'"):
        protocol_label("alpaca")
    models = set(main_with_published(table, cells, "chat_template")["Model"])
    assert "SemAlign, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)" in models  # how it was measured
    assert "SemAlign, reproduced (model chat template, 0-shot) − published" in models
    assert "not the papers' protocol" in published_note(cells, "chat_template")
    note = published_note(cells, "tulu")
    assert "SemAlign v1 (arXiv 2510.24208v1) Table 1 / Table 2" in note and "not the papers'" not in note
    assert published_note([], "tulu") == ""


def test_toy_pairs_get_no_published_rows(table):
    toy = table.loc[["chat"]].rename(index={"chat": "toy"}, level="pair")
    cells = published_cells(TOY, MODELS)
    assert cells == [] and main_with_published(toy, cells, "tulu").equals(formatted(toy))


def test_written_main_table_keeps_signs_and_metrics_stay_reproduced(table, cells, tmp_path):
    shown = main_with_published(table, cells, "tulu")
    out = tmp_path / "out"
    write_tables(table, out / "main.csv", out / "main.md", out / "main.tex", out / "metrics.json", "paper", shown)
    md = (out / "main.md").read_text()
    line = next(s for s in md.splitlines() if "SemAlign, reproduced" in s and "| chat" in s)
    assert "+0.70" in line and "+0.06" in line  # Gap: 1.50 - 1.4425, sign kept
    assert "SemAlign, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)" in (out / "main.csv").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["chat/semalign/MMLU"] == 51.0 and not any("published" in k for k in metrics)


def test_code_teacher_table_rows_columns_and_published_values(table, cells):
    code = code_teacher_table(table, PAIRS, MODELS, cells)
    assert list(code.index) == ["chat", "codellama", "wizard"]  # the teachers of one student
    assert set(code[("student", "")]) == {LLAMA2_7B_CHAT}
    assert code[("teacher", "")].tolist() == [LLAMA2_13B_CHAT, CODELLAMA_13B_PYTHON, WIZARDCODER_13B_PYTHON]
    assert list(CODE_COLUMNS) == [
        "Teacher HumanEval",
        "Teacher MBPP",
        "Seeking HumanEval",
        "Seeking MBPP",
        "LaTen HumanEval",
        "LaTen MBPP",
        "SemAlign HumanEval",
        "SemAlign MBPP",
    ]
    assert list(code["mean"].columns) == list(code["published"].columns) == list(CODE_COLUMNS)
    published = code["published"]
    assert published.loc["codellama", "SemAlign HumanEval"] == 20.12
    assert published.loc["codellama", "Teacher MBPP"] == 37.80
    assert published.loc["wizard", "Teacher HumanEval"] == 56.71
    assert published.loc["chat", "SemAlign MBPP"] == 18.78
    mean, std = code["mean"], code["std"]
    assert mean.loc["codellama", "SemAlign HumanEval"] == 20.0  # seeds 19 and 21
    assert std.loc["codellama", "SemAlign HumanEval"] == pytest.approx(2**0.5)
    assert mean.loc["codellama", "Teacher HumanEval"] == 46.0 and pd.isna(std.loc["codellama", "Teacher HumanEval"])
    assert pd.isna(mean.loc["codellama", "Seeking HumanEval"])  # did not run there


def test_written_code_teacher_table(table, cells, tmp_path):
    write_code_teachers(
        code_teacher_table(table, PAIRS, MODELS, cells), tmp_path / "c.csv", tmp_path / "c.md", "paper", "tulu"
    )
    md = (tmp_path / "c.md").read_text()
    assert md.startswith("paper. HumanEval and MBPP") and "in parentheses the published value" in md
    row = next(s for s in md.splitlines() if CODELLAMA_13B_PYTHON in s)
    assert "| 46.00 (47.56)" in row and "| 20.00 ± 1.41 (20.12)" in row and "| (16.05)" in row
    header, *lines = (tmp_path / "c.csv").read_text().splitlines()
    assert header.startswith(
        "pair,student,teacher,Teacher HumanEval mean,Teacher HumanEval std,Teacher HumanEval "
        "published,Teacher MBPP mean"
    )
    codellama = dict(zip(header.split(","), lines[1].split(",")))
    assert float(codellama["SemAlign HumanEval published"]) == 20.12 and codellama["Seeking MBPP mean"] == ""


def test_code_teacher_table_of_a_toy_run(tmp_path):
    toy = main_table(
        tidy(
            {
                ("toy", "student"): [(10.0, 10.0, 10.0, 10.0)],
                ("toy", "teacher"): [(30.0,) * 4],
                ("toy", "semalign"): [(20.0,) * 4, (22.0,) * 4],
            }
        )
    )
    code = code_teacher_table(toy, TOY, MODELS, [])
    assert list(code.index) == ["toy"] and code.loc["toy", ("teacher", "")] == "big"  # the single teacher's row
    assert code["published"].isna().all().all()
    write_code_teachers(code, tmp_path / "c.csv", tmp_path / "c.md", "toy scale")
    md = (tmp_path / "c.md").read_text()
    assert "| 30.00 " in md and "21.00 ± 1.41" in md and "published" not in md
    no_code = toy.drop(columns=["HumanEval", "MBPP"], level=1)
    empty = code_teacher_table(no_code, TOY, MODELS, [])
    assert empty.empty
    write_code_teachers(empty, tmp_path / "e.csv", tmp_path / "e.md", "toy scale")
    assert "No HumanEval or MBPP result" in (tmp_path / "e.md").read_text()
    assert (tmp_path / "e.csv").read_text().startswith("pair,student,teacher,Teacher HumanEval mean")
