"""Readers of the real benchmark files in ../shared/data, in the hub's schema (see its README.md).

The paper tasks read local files in the schema of the hub datasets they name (``data_files``); these turn
the original releases into those records, so tests can write slices of them as JSONL.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any


def mmlu_rows(data: Path, per_subject: int | None = None, subjects: int | None = None,
              split: str = "test") -> list[dict[str, Any]]:
    """MMLU questions of one split (test, dev) as cais/mmlu records ({question, subject, choices, answer: 0-3}).

    Subjects in file-name order; ``subjects`` keeps the first that many, ``per_subject`` the first rows of
    each (a fixed spread across subjects rather than the first subject's questions).
    """
    rows = []
    for path in sorted((data / "mmlu" / split).glob(f"*_{split}.csv"))[:subjects]:
        subject = path.name.removesuffix(f"_{split}.csv")
        with open(path, newline="", encoding="utf-8") as f:
            for q, a, b, c, d, ans in list(csv.reader(f))[:per_subject]:
                rows.append({"question": q, "subject": subject, "choices": [a, b, c, d], "answer": "ABCD".index(ans)})
    return rows


def humaneval_rows(data: Path) -> list[dict[str, Any]]:
    """HumanEval's 164 problems (openai_humaneval records), from the gzipped original release."""
    with gzip.open(data / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]
