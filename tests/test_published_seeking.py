"""Seeking's published numbers, checked against themselves: every printed Avg is the mean of its seven columns, and
the task-transfer table's matching-task cells are Table 1's "+ 13B Param." row (extracted from the matching task)."""

from __future__ import annotations

import pytest

from pkt.report.published_seeking import COLUMNS, LLAMA2_7B, LLAMA2_13B, PUBLISHED, TRANSFER

ROWS = [(pair, name, row) for pair, rows in PUBLISHED.items() for name, row in rows.items()] + [
    (("transfer",), name, row) for name, row in TRANSFER.items()]


@pytest.mark.parametrize(("pair", "name", "row"), ROWS, ids=[f"{p[0]}-{n}" for p, n, _ in ROWS])
def test_every_printed_average_is_the_mean_of_its_seven_columns(pair, name, row):
    if "Avg" not in row.scores:
        assert any(c not in row.scores for c in COLUMNS)  # only rows with an empty cell print no Avg
        return
    values = [row.scores[c] for c in COLUMNS]
    assert sum(values) / len(values) == pytest.approx(row.scores["Avg"], abs=0.006)


def test_the_transfer_tables_matching_cells_are_table_1s_seeking_row():
    seeking = PUBLISHED[(LLAMA2_13B, LLAMA2_7B)]["seeking"].scores
    matching = {"gsm": ["GSM8K 0-shot", "GSM8K 8-shot"], "mmlu": ["MMLU 0-shot", "MMLU 5-shot"],
                "super_ni": ["Super-NI EM", "Super-NI ROUGE-L"], "lima": ["AlpacaFarm"]}
    for task, columns in matching.items():
        assert [TRANSFER[task].scores[c] for c in columns] == [seeking[c] for c in columns]


def test_the_ablations_full_method_bars_are_table_1s_averages():
    from pkt.report.published_seeking import ABLATION_PAIRS, ABLATIONS

    full = {"layers": "sensitivity", "structure": "submatrix", "modules": "all"}
    averages = tuple(PUBLISHED[pair]["seeking"].scores["Avg"] for pair in ABLATION_PAIRS)
    assert averages == (28.22, 28.63)
    for setting, variant in full.items():
        assert ABLATIONS[setting][variant] == averages
        assert all(value <= best for values in ABLATIONS[setting].values() for value, best in zip(values, averages))
