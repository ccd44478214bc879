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

import hashlib
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


# ------------------------------------------------------------------------- Seeking: plain, few-shot
# Seeking Neural Nuggets evaluates base Llama models (and their LoRA students) with the same scripts, but without
# --use_chat_format (the path Open-Instruct keeps for "vanilla pretrained language models") and with shots:
# GSM8K 0/8-shot stopped at the first newline, MMLU 0/5-shot (--ntrain). ``tests/test_seeking_protocol.py``
# compares these prompts with what the scripts render (the fixture's "seeking" key).

SEEKING = {"repo": "maszhongming/ParaKnowTransfer", "commit": "1a104a2ed9718528bf6b4b4020f981c6c1f8bef7"}

# GSM8K's 8 chain-of-thought exemplars (question, answer), in order: data, from Table 20 of Wei et al. (2022) as
# Open-Instruct stores them (eval/gsm/examplars.py at OPEN_INSTRUCT's commit); the fixture holds the prefix its
# run_eval renders from them.
GSM8K_EXEMPLARS: tuple[tuple[str, str], ...] = (
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there "
     "will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been "
     "21 - 15 = 6. So the answer is 6."),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. So the answer is 5."),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they "
     "had 74 - 35 = 39. So the answer is 39."),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason "
     "give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. So the "
     "answer is 8."),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. So "
     "the answer is 9."),
    ("There were nine computers in the server room. Five more computers were installed each day, from monday to "
     "thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers "
     "were added. 9 + 20 is 29. So the answer is 29."),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls "
     "did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he "
     "had 35 - 2 = 33 golf balls. So the answer is 33."),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. "
     "23 - 15 is 8. So the answer is 8."),
)


def gsm8k_prefix(n_shot: int) -> str:
    """The instruction and exemplars before "Question: ": 0-shot's one-line instruction, or all 8 exemplars in order
    (``--n_shot 8``; Open-Instruct draws a random subset only for fewer, which Seeking does not use)."""
    if n_shot == 0:
        return "Answer the following question.\n\n"
    if n_shot != len(GSM8K_EXEMPLARS):
        raise ValueError(f"GSM8K takes 0 or {len(GSM8K_EXEMPLARS)} shots as Seeking evaluates it, not {n_shot}")
    shots = "\n\n".join(f"Question: {q}\nAnswer: {a}" for q, a in GSM8K_EXEMPLARS)
    return f"Answer the following questions.\n\n{shots}\n\n"


def gsm8k_plain(doc: dict[str, Any], n_shot: int) -> str:
    """The plain-format GSM8K prompt (no chat turns): prefix, the stripped question, then "\\nAnswer:"."""
    return f"{gsm8k_prefix(n_shot)}Question: {doc['question'].strip()}\nAnswer:"


def gsm8k_0shot_plain(doc: dict[str, Any]) -> str:
    return gsm8k_plain(doc, 0)


def gsm8k_8shot_plain(doc: dict[str, Any]) -> str:
    return gsm8k_plain(doc, 8)


MMLU_TOKEN_LIMIT = 2048  # eval_hf_model drops exemplars, last first, until the prompt is at most this many tokens


def mmlu_example(doc: dict[str, Any], answer: bool) -> str:
    """``format_example``: question, lettered options, "Answer:", then " X\\n\\n" for an exemplar."""
    options = "".join(f"\n{letter}. {csv_cell(choice)}" for letter, choice in zip("ABCD", doc["choices"]))
    text = f"{csv_cell(doc['question'])}{options}\nAnswer:"
    return f"{text} {'ABCD'[int(doc['answer'])]}\n\n" if answer else text


def mmlu_fewshot(doc: dict[str, Any], shots: list[dict[str, Any]], k: int) -> str:
    """``gen_prompt(dev_df, subject, k) + format_example(test_df, i, False)``: the first ``k`` of the subject's dev
    questions with their answers, then the question (k = 0 is :func:`mmlu_user`)."""
    head = f"The following are multiple choice questions (with answers) about {format_subject(doc['subject'])}.\n\n"
    return head + "".join(mmlu_example(s, True) for s in shots[:k]) + mmlu_example(doc, False)


def mmlu_shots_kept(doc: dict[str, Any], shots: list[dict[str, Any]], count_tokens, k: int = 5,
                    limit: int = MMLU_TOKEN_LIMIT) -> int:
    """How many of ``k`` exemplars eval_hf_model keeps: one fewer while the prompt is over ``limit`` tokens by
    ``count_tokens`` (the evaluated model's tokenizer, no special tokens)."""
    while k > 0 and count_tokens(mmlu_fewshot(doc, shots, k)) > limit:
        k -= 1
    return k


def mmlu_key(doc: dict[str, Any]) -> str:
    """A test question's identity, for tables of its shots: subject, question and options with whitespace runs
    made one space (a CSV's "\\r\\n" and a hub copy's "\\n" name the same question)."""
    text = "\x00".join(" ".join(str(t).split()) for t in (doc["subject"], doc["question"], *doc["choices"]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mmlu_dev_shots(dev: Any, k: int) -> dict[str, list[dict[str, Any]]]:
    """{subject: its first ``k`` dev questions, in order} (``dev_df[:ntrain]``) from a dev split's records."""
    shots: dict[str, list[dict[str, Any]]] = {}
    for row in dev:
        rows = shots.setdefault(row["subject"], [])
        if len(rows) < k:
            rows.append(dict(row))
    return shots
