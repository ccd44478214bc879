"""Seeking Neural Nuggets' own published numbers (Zhong et al., ICLR 2024; the project website's Table 1 and its
task-transfer table), as data, for the Seeking experiment's tables (config/seeking.yaml).

These are a different experiment from SemAlign's tables (:mod:`pkt.report.published`): base (not chat) models,
Seeking's four training sets, and Open-Instruct's late-2023 evaluation with shots: GSM8K 0- and 8-shot and MMLU 0-
and 5-shot accuracy, Super-NaturalInstructions exact match and ROUGE-L, AlpacaFarm win rate against
text-davinci-003 (all in %). Only printed numbers are here: a cell the table leaves empty ("-") is absent, and the
printed Avg is kept as printed (it is the mean of the seven columns, which ``tests/test_published_seeking.py``
checks, so a mistyped cell shows).

Keys: (teacher repo id, student repo id) of the checkpoints Seeking's configs name (configs/*/adapter_*.json at
ParaKnowTransfer 1a104a2), then the row: ``student`` and ``teacher`` (vanilla), ``lora`` (7B-LoRA), ``seeking``
("+ 13B Param.": the parameters extracted from the matching task).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from pkt.report.published import PublishedRow

SOURCE: Final = "Seeking Neural Nuggets (ICLR 2024), project website Table 1"
TRANSFER_SOURCE: Final = "Seeking Neural Nuggets (ICLR 2024), project website task-transfer table"
# The columns of Seeking's Table 1, in its order; "Avg" is over these seven.
COLUMNS: Final = ("GSM8K 0-shot", "GSM8K 8-shot", "MMLU 0-shot", "MMLU 5-shot", "Super-NI EM", "Super-NI ROUGE-L",
                  "AlpacaFarm")

LLAMA2_13B: Final = "meta-llama/Llama-2-13b-hf"
LLAMA2_7B: Final = "meta-llama/Llama-2-7b-hf"
LLAMA1_30B: Final = "elinas/llama-30b-hf-transformers-4.29"
LLAMA1_13B: Final = "elinas/llama-13b-hf-transformers-4.29"
LLAMA1_7B: Final = "elinas/llama-7b-hf-transformers-4.29"


def _row(*values: float | None, avg: float | None = None) -> PublishedRow:
    """A Table 1 row from its seven columns in order (None: printed "-") and its printed Avg."""
    scores = {column: v for column, v in zip(COLUMNS, values, strict=True) if v is not None}
    if avg is not None:
        scores["Avg"] = avg
    return PublishedRow(SOURCE, MappingProxyType(scores))


_VANILLA_LLAMA1_7B: Final = _row(4.70, 10.77, 32.10, 35.30, 0.67, 5.55, None)
_VANILLA_LLAMA1_13B: Final = _row(4.93, 17.44, 43.50, 46.80, 2.18, 7.78, None)
_LORA_LLAMA1_7B: Final = _row(17.26, 16.93, 43.43, 38.90, 22.91, 40.49, 9.07, avg=27.00)

# (teacher repo id, student repo id) -> row -> published scores.
PUBLISHED: Final[Mapping[tuple[str, str], Mapping[str, PublishedRow]]] = MappingProxyType({
    (LLAMA2_13B, LLAMA2_7B): MappingProxyType({
        "student": _row(3.34, 15.54, 41.70, 45.80, 0.00, 4.68, None),
        "teacher": _row(6.52, 27.82, 52.10, 55.20, 0.00, 4.84, None),
        "lora": _row(23.38, 21.05, 47.77, 47.07, 24.93, 41.25, 20.50, avg=32.28),
        "seeking": _row(25.30, 26.31, 49.37, 46.53, 26.16, 42.98, 24.64, avg=34.47),
    }),
    (LLAMA1_13B, LLAMA1_7B): MappingProxyType({
        "student": _VANILLA_LLAMA1_7B,
        "teacher": _VANILLA_LLAMA1_13B,
        "lora": _LORA_LLAMA1_7B,
        "seeking": _row(18.73, 18.85, 44.03, 39.77, 24.51, 42.37, 9.28, avg=28.22),
    }),
    (LLAMA1_30B, LLAMA1_7B): MappingProxyType({
        "student": _VANILLA_LLAMA1_7B,
        "lora": _LORA_LLAMA1_7B,
        "seeking": _row(18.63, 18.52, 45.20, 40.60, 25.01, 43.08, 9.40, avg=28.63),
    }),
    (LLAMA1_30B, LLAMA1_13B): MappingProxyType({
        "student": _VANILLA_LLAMA1_13B,
        "lora": _row(26.18, 23.78, 50.43, 50.03, 27.34, 45.53, 13.91, avg=33.89),
        "seeking": _row(27.85, 27.70, 51.30, 51.03, 27.51, 46.09, 17.27, avg=35.54),
    }),
})

# Llama-2 13B -> 7B: parameters extracted from one task's seeds, each column's adapter trained on its own task.
# {extracted from: scores}.
TRANSFER: Final[Mapping[str, PublishedRow]] = MappingProxyType({
    task: PublishedRow(TRANSFER_SOURCE, MappingProxyType({**dict(zip(COLUMNS, values, strict=True)), "Avg": avg}))
    for task, values, avg in (
        ("gsm", (25.30, 26.31, 48.40, 45.97, 24.45, 42.11, 23.68), 33.75),
        ("mmlu", (24.11, 25.47, 49.37, 46.53, 25.55, 42.55, 24.01), 33.94),
        ("super_ni", (23.78, 24.11, 48.60, 46.70, 26.16, 42.98, 24.31), 33.81),
        ("lima", (24.08, 25.60, 49.03, 47.23, 25.63, 42.83, 24.64), 34.15),
    )
})

ABLATION_SOURCE: Final = ("Seeking Neural Nuggets (ICLR 2024), project website ablation figures: LLaMA-1 average "
                          "scores read off bar charts, approximate except the full method's (Table 1's Avg)")
# {ablated setting: {variant (the seeking section's value): (13B -> 7B, 30B -> 7B) average}}. The full method
# (sensitivity layers, sub-matrix, all modules) is Table 1's printed Avg; the other bars are read to about 0.05.
# "neuron" (whole rows by sensitivity) has no counterpart among the extraction's structures.
ABLATIONS: Final[Mapping[str, Mapping[str, tuple[float, float]]]] = MappingProxyType({
    "layers": MappingProxyType({"random": (28.03, 28.37), "first": (27.97, 28.42), "last": (28.09, 28.46),
                                "sensitivity": (28.22, 28.63)}),
    "structure": MappingProxyType({"random": (27.06, 27.12), "neuron": (27.27, 27.36), "rowcol": (27.83, 28.23),
                                   "submatrix": (28.22, 28.63)}),
    "modules": MappingProxyType({"embedding": (27.33, 27.52), "ffn": (27.87, 28.23), "attention": (27.53, 27.92),
                                 "all": (28.22, 28.63)}),
})
# The pairs of the two values of each bar, in order.
ABLATION_PAIRS: Final = ((LLAMA1_13B, LLAMA1_7B), (LLAMA1_30B, LLAMA1_7B))
ABLATION_PAIR_NAMES: Final = ("LLaMA-1 13B -> 7B", "LLaMA-1 30B -> 7B")
