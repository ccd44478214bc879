"""The papers' evaluation protocol: Open-Instruct's evaluation scripts at the commit of the published rows.

Seeking and LaTen evaluate with allenai/open-instruct in its late-2023 state (:data:`OPEN_INSTRUCT`); the
rows the paper tables compare against were measured with it. Each function here names the Open-Instruct
file and function whose behaviour it reproduces, and ``tests/test_open_instruct.py`` compares its output,
byte for byte, with what Open-Instruct's own code renders at that commit (``tests/fixtures/open_instruct.json``,
written by ``tests/fixtures/make_open_instruct.py`` from a checkout). In brief:

* MMLU (``eval/mmlu/run_eval.py``): 0-shot, ``format_subject`` puts a space before every word of the
  subject ("about  abstract algebra." has two), the question is not stripped, and the CSVs are read with
  pandas, so an option spelled like a missing value ("None") reads as NaN and prints "nan" (10 of 14,042);
  the next token " A".." D" is scored, micro-averaged.
* GSM8K (``eval/gsm/run_eval.py``): 0-shot, greedy, in the chat format stopped only by EOS; the answer is the
  last number of the output after removing thousands commas, compared as a string after lower-casing and
  removing punctuation (the ``exact_match`` of HF evaluate, which lm-eval's ``exact_match`` ports).
* HumanEval (``eval/codex_humaneval/run_eval.py``): the answer starts "Here is the completed function:" and
  the function's prompt, no code fence; 20 samples per problem at temperature 0.1, top-p 0.95, stopped at the
  Codex stops; the program is prompt + completion + test; the unbiased pass@1 of Chen et al. (2021).
* MBPP is not in Open-Instruct at that commit: LaTen's prompt (its splits' format), the signature cut at
  the reference code's first colon (``code.split(":")[0]``), greedy, pass@1 on task_ids 11-510.
"""

from __future__ import annotations

import re
from fractions import Fraction
from math import comb
from typing import Any

OPEN_INSTRUCT = {
    "repo": "allenai/open-instruct",
    "commit": "b55563782b9b6bf3c99c5a1daa67967f6a2cdceb",
    "date": "2023-10-28",
}

# ------------------------------------------------------------------------------------------------- MMLU

# The strings pandas.read_csv reads as NaN by default (pandas >= 2.0, as installed by Open-Instruct's
# unpinned requirements in late 2023): Open-Instruct formats such an option as "nan".
PANDAS_NA = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
    "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})


def csv_cell(text: str) -> str:
    """A CSV field as ``"{}".format(df.iloc[i, j])`` prints it after ``pd.read_csv(header=None)``."""
    return "nan" if text in PANDAS_NA else text


def format_subject(subject: str) -> str:
    """``format_subject``: every word of the subject preceded by a space ("abstract_algebra" -> " abstract algebra")."""
    return "".join(" " + word for word in subject.split("_"))


def mmlu_user(doc: dict[str, Any]) -> str:
    """The 0-shot MMLU prompt of ``gen_prompt(dev_df, subject, 0) + format_example(test_df, i, False)``."""
    options = "".join(f"\n{letter}. {csv_cell(choice)}" for letter, choice in zip("ABCD", doc["choices"]))
    return (f"The following are multiple choice questions (with answers) about {format_subject(doc['subject'])}.\n\n"
            f"{csv_cell(doc['question'])}{options}\nAnswer:")


# ------------------------------------------------------------------------------------------------ GSM8K

_THOUSANDS = re.compile(r"(\d),(\d)")
_OI_NUMBER = re.compile(r"[-+]?\d*\.\d+|\d+")


def gsm8k_user(doc: dict[str, Any]) -> str:
    """The 0-shot GSM8K user turn (``prompt_prefix + "Question: " + question.strip()``)."""
    return f"Answer the following question.\n\nQuestion: {doc['question'].strip()}"


def gsm8k_answer(doc: dict[str, Any]) -> str:
    """The gold answer as Open-Instruct keeps it: after '####', stripped, thousands commas removed."""
    return _THOUSANDS.sub(r"\1\2", doc["answer"].split("####")[1].strip())


def gsm8k_prediction(output: str) -> str:
    """The prediction Open-Instruct reads from an output: its last number once thousands commas are removed
    (``[-+]?\\d*\\.\\d+|\\d+``: '-5' reads '5', '18.00' reads '18.00', '$18.' reads '18'), or the whole output
    when it has none."""
    numbers = _OI_NUMBER.findall(_THOUSANDS.sub(r"\1\2", output))
    return numbers[-1] if numbers else output


def gsm8k_predictions(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[list[str]]:
    """lm-eval custom filter: each response -> :func:`gsm8k_prediction`."""
    return [[gsm8k_prediction(r) for r in rs] for rs in resps]


# --------------------------------------------------------------------------------------- HumanEval

CODEX_STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")  # the Codex paper's stops, as Open-Instruct uses
HUMANEVAL_ANSWER = "Here is the completed function:\n\n\n"


def humaneval_user(doc: dict[str, Any]) -> str:
    return f"Complete the following python function.\n\n\n{doc['prompt']}"


def humaneval_answer_start(doc: dict[str, Any]) -> str:
    """The answer's start: the chat prompt ends in a newline, so no space; then the function's prompt."""
    return HUMANEVAL_ANSWER + doc["prompt"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of Chen et al. (2021): 1 - C(n-c, k) / C(n, k) for c passing of n samples."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


# ------------------------------------------------------------------------------------------------ MBPP


def mbpp_signature(code: str) -> str:
    """LaTen's MBPP signature: the reference code up to its first colon (imports stay, a class too)."""
    return code.split(":")[0]


def mbpp_user(doc: dict[str, Any]) -> str:
    return f"Complete the following python function.\n\n\n{doc['text']}\n{mbpp_signature(doc['code'])}"


# ---------------------------------------------------------------------------------- granularity


def reachable(published: float, items: int, samples: int = 1, decimals: int = 2) -> bool:
    """Whether a published percentage can come out of ``items`` x ``samples`` scored 0/1 outcomes.

    The mean of ``items * samples`` verdicts moves in steps of 1 / (items * samples): 14.05 (HumanEval,
    Llama-2-7B-chat) is 461/3280 under 20 samples per problem, but no count of 164 greedy verdicts rounds to it.
    """
    total = items * samples
    nearest = round(Fraction(str(published)) / 100 * total)
    candidates = [c for c in (nearest - 1, nearest, nearest + 1) if 0 <= c <= total]
    return any(round(100 * c / total, decimals) == round(published, decimals) for c in candidates)
