"""The stand-in of config/seeking.yaml: local files in place of what CI cannot download (tests/standin.py).

Seeking's four training sets and seed files are read from the reference repository (maszhongming/ParaKnowTransfer
``data/``) at a pinned commit; CI has no network, and those files are not in ../shared/data. The stand-in writes
small files in the reference's schema instead (one JSON object per line: ``dataset``, ``id``, ``messages``: a user
and an assistant turn, plus ``category`` for MMLU) and points each ``data.paper.files.<task>.<split>`` at one, with
its own location, path, sha256 and record count. These are stand-ins in the reference's schema, not the
reference's rows:

* seeking_gsm: GSM8K train problems (../shared/data/gsm8k/train.jsonl) rendered as the reference renders them,
  "Answer the following question.\\n\\nQuestion: {q}" -> "Answer: {solution, calculator marks removed, lines
  joined} So the answer is {n}."
* seeking_mmlu: MMLU dev questions (../shared/data/mmlu/dev), "The following are multiple choice questions (with
  answers) about {subject}.\\n\\n{q}\\nA. ..\\nAnswer:" -> the letter.
* seeking_superni and seeking_lima: synthesised (no train split of either is in ../shared/data): Super-NI-style
  instructions (a definition, one worked "Input:/Output:" example, then the input) of a few made-up tasks, and
  LIMA-style open requests with longer answers.

Each train file has :data:`TRAIN_ROWS` rows and each seed file (``extract``: sample_*.jsonl) :data:`EXTRACT_ROWS`,
as many as the reference's, so ``seeking.k`` (32) is kept. The evaluation tasks read slices of the real benchmarks in
the hub datasets' schema (GSM8K test, MMLU test with its subjects' dev questions for 5-shot) and a few hand-made
Super-NI instances in :mod:`pkt.evaluation.superni`'s schema. Of the transfer grid and the ablations, each of
which adds a train and an evaluate job per row (about 12 s of imports each on 2 cores), the stand-in keeps
:data:`TRANSFER` (a task also trained on, and LIMA, extracted from but never trained on) and :data:`ABLATION`
(the module-origin ablation: factors for part of the modules only, the one ablation that changes which modules
Seeking initialises); every variant's cut is tested on its own (tests/test_seeking_ablation.py). About 2 minutes
on 2 cores; the shipped grid (4 transfer rows, 8 ablation rows) 3.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

from paper_data import mmlu_rows

from pkt.io import write_jsonl

TRANSFER = ["seeking_gsm", "seeking_lima"]  # seeking.transfer of the stand-in (module docstring)
ABLATION = ["modules"]  # seeking.ablation of the stand-in
TRAIN_ROWS = 40  # the stand-in's data.paper.limit: every row read
EXTRACT_ROWS = 32  # as the reference's sample_*.jsonl: seeking.k draws all 32
TEST_ITEMS = {"seeking_gsm8k_0shot": 2, "seeking_gsm8k_8shot": 2, "seeking_mmlu_0shot": 4, "seeking_mmlu_5shot": 4,
              "seeking_superni": 2}

# Super-NI instances for the test file, in pkt.evaluation.superni's schema (made up: not Super-NI's).
SUPERNI_TEST = [
    {"id": "standin_task_addition-1", "task": "standin_task_addition", "category": "Mathematics",
     "definition": "In this task, you are given two numbers. Output their sum.", "input": "12 and 30",
     "outputs": ["42"]},
    {"id": "standin_task_antonyms-1", "task": "standin_task_antonyms", "category": "Word Semantics",
     "definition": "Given an adjective, generate its antonym", "input": "hot", "outputs": ["cold", "cool"]},
]


def gsm_solution(answer: str) -> str:
    """A GSM8K solution as the reference's assistant turn: "Answer: {steps} So the answer is {n}."."""
    steps, final = answer.split("####")
    steps = " ".join(line.strip() for line in re.sub(r"<<[^>]*>>", "", steps).splitlines() if line.strip())
    return f"Answer: {steps} So the answer is {final.strip().replace(',', '')}."


def gsm_rows(data: Path, n: int, start: int) -> list[dict[str, Any]]:
    """``n`` GSM8K train problems from line ``start``, as the reference's gsm rows."""
    lines = (data / "gsm8k" / "train.jsonl").read_text().splitlines()[start : start + n]
    rows = []
    for i, line in enumerate(lines, start):
        problem = json.loads(line)
        rows.append({"dataset": "gsm", "id": f"gsm_{i}", "messages": [
            {"role": "user", "content": f"Answer the following question.\n\nQuestion: {problem['question']}"},
            {"role": "assistant", "content": gsm_solution(problem["answer"])}]})
    return rows


def mmlu_reference_rows(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MMLU questions as the reference's mmlu rows (one space in "about {subject}", unlike Open-Instruct's)."""
    rows = []
    for i, q in enumerate(questions):
        options = "".join(f"\n{letter}. {choice}" for letter, choice in zip("ABCD", q["choices"]))
        user = (f"The following are multiple choice questions (with answers) about {q['subject'].replace('_', ' ')}."
                f"\n\n{q['question']}{options}\nAnswer:")
        rows.append({"dataset": "mmlu", "category": q["subject"], "id": f"{q['subject']}_{i}", "messages": [
            {"role": "user", "content": user}, {"role": "assistant", "content": "ABCD"[q["answer"]]}]})
    return rows


WORDS = ["river", "lamp", "green", "quiet", "stone", "bright", "market", "winter", "paper", "sails", "orange", "tall"]


def superni_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` synthesised Super-NI-style rows: a task's definition, one worked example, then the input."""
    rng = random.Random(seed)
    tasks = [
        ("standin_task_sum", "In this task, you are given two numbers. Output their sum.",
         lambda: (lambda a, b: (f"{a} and {b}", str(a + b)))(rng.randint(1, 99), rng.randint(1, 99))),
        ("standin_task_count", "Count the words in the given sentence and output the count as a number.",
         lambda: (lambda ws: (" ".join(ws), str(len(ws))))(rng.sample(WORDS, rng.randint(2, 7)))),
        ("standin_task_reverse", "Given a list of words, output them in reverse order, separated by spaces.",
         lambda: (lambda ws: (" ".join(ws), " ".join(reversed(ws))))(rng.sample(WORDS, rng.randint(2, 5)))),
        ("standin_task_upper", "Rewrite the given word in capital letters.",
         lambda: (lambda w: (w, w.upper()))(rng.choice(WORDS))),
    ]
    rows = []
    for i in range(n):
        name, definition, draw = tasks[i % len(tasks)]
        (shown, shown_out), (given, answer) = draw(), draw()
        user = f"{definition}\n\nInput:\n{shown}\nOutput:\n{shown_out}\n\nInput:\n{given}\nOutput:\n"
        rows.append({"dataset": "super_ni", "id": f"super_ni_{name}-{seed}{i:03d}", "messages": [
            {"role": "user", "content": user}, {"role": "assistant", "content": answer}]})
    return rows


def lima_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` synthesised LIMA-style rows: an open request and a longer answer."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.sample(WORDS, 2)
        user = f"Write a short note about a {a} {b}, and explain why someone might care about it."
        answer = (f"A {a} {b} is easy to overlook.\n\nFirst, it is {rng.choice(WORDS)} in a way few things are. "
                  f"Second, people who notice a {b} often remember it for years.\n\nIn short: look for the {a} one.")
        rows.append({"dataset": "lima", "id": f"lima_{seed}{i:03d}", "messages": [
            {"role": "user", "content": user}, {"role": "assistant", "content": answer}]})
    return rows


def reference_rows(data: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{task: {split: rows}} of the four training sets: ``train`` and its seed file ``extract``, disjoint."""
    dev = mmlu_rows(data, split="dev")
    return {
        "seeking_gsm": {"train": gsm_rows(data, TRAIN_ROWS, 0), "extract": gsm_rows(data, EXTRACT_ROWS, TRAIN_ROWS)},
        "seeking_mmlu": {"train": mmlu_reference_rows(dev[::5][:TRAIN_ROWS]),  # one per subject, then the next
                         "extract": mmlu_reference_rows(dev[1::5][:EXTRACT_ROWS])},
        "seeking_superni": {"train": superni_rows(TRAIN_ROWS, 1), "extract": superni_rows(EXTRACT_ROWS, 2)},
        "seeking_lima": {"train": lima_rows(TRAIN_ROWS, 1), "extract": lima_rows(EXTRACT_ROWS, 2)},
    }


def reference_files(folder: Path, data: Path, files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Write the stand-in of every file of ``files`` (data.paper.files of the Seeking config) beside the
    reference's folder layout; their ``data.paper.files`` entries (location, path, sha256, records)."""
    rows, entries = reference_rows(data), {}
    for task, splits in files.items():
        for split, file in splits.items():
            path = f"{file['path'].rsplit('/', 1)[0]}/standin_{split}.jsonl"
            (folder / path).parent.mkdir(parents=True, exist_ok=True)  # the reference's key order and separators
            (folder / path).write_text("".join(json.dumps(row) + "\n" for row in rows[task][split]))
            digest = hashlib.sha256((folder / path).read_bytes()).hexdigest()
            entries.setdefault(task, {})[split] = {"location": str(folder), "path": path, "sha256": digest,
                                                   "records": len(rows[task][split])}
    return entries


def benchmark_files(folder: Path, data: Path, tasks: list[str]) -> dict[str, dict[str, Any]]:
    """evaluation.data of the Seeking tasks: local test files in the schemas their YAMLs read."""
    folder.mkdir(parents=True, exist_ok=True)
    gsm = [json.loads(line) for line in (data / "gsm8k" / "test.jsonl").read_text().splitlines()]
    mmlu = mmlu_rows(data, per_subject=1)
    mmlu = mmlu[:: len(mmlu) // TEST_ITEMS["seeking_mmlu_0shot"]][: TEST_ITEMS["seeking_mmlu_0shot"]]
    subjects = {q["subject"] for q in mmlu}
    files = {"gsm8k": gsm[: TEST_ITEMS["seeking_gsm8k_0shot"]], "mmlu_test": mmlu,
             "mmlu_dev": [q for q in mmlu_rows(data, split="dev") if q["subject"] in subjects],  # the 5-shot exemplars
             "superni": SUPERNI_TEST[: TEST_ITEMS["seeking_superni"]]}
    for name, rows in files.items():
        write_jsonl(folder / f"{name}.jsonl", rows)
    named = {"seeking_gsm8k_0shot": {"test": "gsm8k"}, "seeking_gsm8k_8shot": {"test": "gsm8k"},
             "seeking_mmlu_0shot": {"test": "mmlu_test"},
             "seeking_mmlu_5shot": {"test": "mmlu_test", "dev": "mmlu_dev"}, "seeking_superni": {"test": "superni"}}
    return {task: {"data_files": {split: str(folder / f"{name}.jsonl") for split, name in named[task].items()}}
            for task in tasks}


def seeking_override(config: dict[str, Any], root: Path, data: Path) -> dict[str, Any]:
    """What the Seeking stand-in changes beyond every stand-in's override: the files of its training sets (every
    task it trains on or extracts from, written under ``root/reference``) and its test files (``root/tests``)."""
    seeking = [t for t in config["evaluation"]["tasks"] if t in TEST_ITEMS]
    files = {task: config["data"]["paper"]["files"][task] for task in
             dict.fromkeys([*config["evaluation"]["train_task"].values(), *config["seeking"]["transfer"]])}
    return {"data": {"paper": {"files": reference_files(root / "reference", data, files)}},
            "evaluation": {"data": benchmark_files(root / "tests", data, seeking)},
            "seeking": {"transfer": TRANSFER, "ablation": ABLATION}}
