"""Prompt rendering and response scoring for the lm-eval tasks in ``workflow/tasks``.

The task YAMLs call these through ``workflow/tasks/utils.py`` (``!function utils.x``), so the logic
lives in the tested library. Toy tasks render the project's own chat format (the same as training);
paper tasks follow the papers' Open-Instruct prompts in the Tulu format, or the model's own chat
template (:func:`protocol_config`). Code tasks are scored by running each program in :mod:`pkt.evaluation.sandbox.run`,
all programs of a task at once on every core, from an lm-eval ``custom`` filter; the sandbox verdict
(status and reason) is the filtered response, so it is kept in the samples file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

from pkt.data.records import render_prompt
from pkt.evaluation import open_instruct as oi

# --------------------------------------------------------------------------- toy tasks


def toy_prompt(doc: dict[str, Any]) -> str:
    """The chat prompt of a toy record: the user turn and the assistant header."""
    return render_prompt(doc["messages"][0]["content"])


# --------------------------------------------------------------------------- answers


NUMBER = re.compile(
    r"(?<![\w)])(?P<sign>[-\u2212])?"  # a minus (ASCII or Unicode) unless it joins two terms: "10-20", "x-3"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"  # 1,234.5 | 42 | 7.50 | .5; "3,4" is two
    r"(?!\d)"
)
# "So the answer is N" ends an Open-Instruct answer; its "Answer:" prefix opens the reasoning, not the answer.
ANSWER_PHRASE = re.compile(r"answer is\s*:?", re.IGNORECASE)
ANSWER_MARKERS = (re.compile("####"), ANSWER_PHRASE)  # in order of precedence


def normalise_number(text: str) -> str:
    """'1,000.00' -> '1000', '$7.50' -> '7.5', '\u22125' -> '-5', '.5' -> '0.5': the form answers are compared in."""
    cleaned = text.replace(",", "").replace("$", "").replace("\u2212", "-").rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return cleaned.strip()
    return str(int(value)) if value == int(value) else repr(value)


def _numbers(text: str) -> list[str]:
    return [m.group("sign") and "-" + m.group("num") or m.group("num") for m in NUMBER.finditer(text)]


def final_number(text: str) -> str:
    """The answer of a response, by the protocol's answer markers before any fallback.

    The first number after '####' (GSM8K's own format); else the first number after the first answer
    phrase ('So the answer is N'), so text a model rambles on with afterwards ('...\n\n
    Question: Tom has 3 cats and 5 dogs') cannot change it; else the last number of the response.
    """
    for marker in ANSWER_MARKERS:
        found = marker.search(text)
        after = _numbers(text[found.end() :]) if found else []
        if after:
            return normalise_number(after[0])
    numbers = _numbers(text)
    return normalise_number(numbers[-1]) if numbers else ""


def number_match(references: list[str], predictions: list[str]) -> float:
    """lm-eval metric over one doc: 1.0 when the prediction is the reference's number (both normalised by
    :func:`normalise_number`: '18.00' is 18, '-5' is not 5), the paper GSM8K's second metric."""
    prediction = predictions[0][0] if isinstance(predictions[0], list) else predictions[0]
    return float(normalise_number(prediction) == normalise_number(references[0]))


# Targets as functions, not Jinja strings: lm-eval compiles a Jinja template anew for every document
# (about 2 s per 420-item task here).
def toy_gsm8k_target(doc: dict[str, Any]) -> str:
    """The gold answer in the form a prediction is compared in (:func:`normalise_number`): ``str()`` of a
    float answer would read "2.0" and never match the "2" extracted from a response."""
    return normalise_number(str(doc["answer_value"]))


def mbpp_target(doc: dict[str, Any]) -> str:
    return "\n".join(doc["test_list"])


def extract_numbers(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[list[str]]:
    """lm-eval custom filter: each response -> its final number (normalised)."""
    return [[final_number(r) for r in rs] for rs in resps]


# --------------------------------------------------------------------------- code


FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:```|$)", re.DOTALL)  # any tag: python, py, python3...


def extract_code(response: str) -> str:
    """The code of a response: the first fenced block when there is one, else the text up to [DONE]."""
    match = FENCE.search(response)
    code = match.group(1) if match else response
    return code.split("[DONE]")[0]


def humaneval_program(doc: dict[str, Any], response: str) -> str:
    """Program for a HumanEval-style doc: the whole function if the response defines it, else prompt + body."""
    from pkt.evaluation.sandbox.run import humaneval_program as build

    code = extract_code(response)
    if re.search(rf"^def\s+{re.escape(doc['entry_point'])}\s*\(", code, re.MULTILINE):
        # A complete function: keep the prompt's imports and helpers, then let the response's definition win.
        return build(doc["prompt"] + "    pass\n\n", code, doc["test"], doc["entry_point"])
    return build(doc["prompt"], code, doc["test"], doc["entry_point"])


def mbpp_program(doc: dict[str, Any], response: str) -> str:
    from pkt.evaluation.sandbox.run import mbpp_program as build

    return build(extract_code(response), doc["test_list"], doc.get("test_setup_code") or "")


_CODE_WORKERS = 2


def set_code_workers(n: int) -> None:
    """How many programs the code tasks run at once (the evaluate job's threads)."""
    global _CODE_WORKERS
    _CODE_WORKERS = max(1, int(n))


_VERDICTS: dict[str, str] = {}  # sha256 of a program -> its verdict, for this process (one evaluate job)
_STORE = None  # pkt.evaluation.verdicts.VerdictStore shared by the run's evaluate jobs, when set


def set_verdict_store(folder) -> None:
    """Share verdicts with the other evaluate jobs of the run through ``folder`` (:mod:`pkt.evaluation.verdicts`)."""
    global _STORE
    from pkt.evaluation.verdicts import VerdictStore

    _STORE = VerdictStore(folder) if folder else None


def run_code(programs: list[str]) -> list[str]:
    """Run programs in the sandbox on every core; return each verdict as a JSON string.

    A program identical byte for byte to one already judged (the same completion of the same problem from
    another seed's adapter, in this process; or from another method, in the run's verdict store) gets that
    verdict instead of a second run.
    """
    from pkt.evaluation.sandbox.run import run_programs

    keys = [hashlib.sha256(p.encode()).hexdigest() for p in programs]
    if _STORE is not None:
        for k in set(keys) - _VERDICTS.keys():
            stored = _STORE.get(k)
            if stored is not None:
                _VERDICTS[k] = stored
    todo = {k: p for k, p in zip(keys, programs) if k not in _VERDICTS}
    results = run_programs(list(todo.values()), workers=_CODE_WORKERS)
    for k, r in zip(todo, results):
        _VERDICTS[k] = json.dumps(r.to_dict(), sort_keys=True)
        if _STORE is not None:
            _STORE.put(k, _VERDICTS[k])
    return [_VERDICTS[k] for k in keys]


def humaneval_filter(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[list[str]]:
    """lm-eval custom filter: run every HumanEval program; the verdict replaces the response."""
    return _verdicts(resps, docs, humaneval_program)


def mbpp_filter(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[list[str]]:
    return _verdicts(resps, docs, mbpp_program)


def _verdicts(resps, docs, build) -> list[list[str]]:
    programs = [build(doc, r) for rs, doc in zip(resps, docs) for r in rs]
    verdicts = iter(run_code(programs))
    return [[next(verdicts) for _ in rs] for rs in resps]


def paper_humaneval_program(doc: dict[str, Any], response: str) -> str:
    """Open-Instruct's HumanEval program: the problem's prompt, the completion as generated (the model continued
    the function it was given, no fence to look for), then the tests and ``check(entry_point)``."""
    from pkt.evaluation.sandbox.run import humaneval_program as build

    return build(doc["prompt"], response, doc["test"], doc["entry_point"])


def paper_humaneval_filter(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[list[str]]:
    """lm-eval custom filter: run every sample's program; the verdicts replace the samples."""
    return _verdicts(resps, docs, paper_humaneval_program)


def pass_at_1(references: list[str], predictions: list[str] | list[list[str]]) -> float:
    """lm-eval metric over one doc: the unbiased pass@1 of its samples' sandbox verdicts (c / n; one greedy
    sample gives 0 or 1). With ``repeats`` and no ``take_first`` filter, lm-eval hands every sample's verdict."""
    verdicts = predictions[0] if isinstance(predictions[0], list) else predictions
    passed = sum(json.loads(v)["status"] == "pass" for v in verdicts)
    return oi.pass_at_k(len(verdicts), passed, 1)


# --------------------------------------------------------------------------- paper tasks
# The papers' protocol (pkt.evaluation.open_instruct): Open-Instruct's prompts, 0-shot. Each paper task is a
# user turn and the start of the assistant's answer (Open-Instruct appends it after the chat header, so a model
# continues "The answer is:" or the function it was given). Under the "tulu" protocol (the published rows)
# both are rendered in the Tulu format the papers evaluate with; under "chat_template" lm-eval renders the
# user turn with the model's own template and appends the answer start (gen_prefix).

PROTOCOLS = {"tulu": "Open-Instruct/Tulu 0-shot", "chat_template": "model chat template, 0-shot"}  # name: label
CODE_PREFIX = "Here is the completed function:\n\n\n```python\n"  # MBPP: LaTen's splits' answer format


def mbpp_test_split(dataset):
    """MBPP's test set: task_ids 11-510 (the hub's 'full' test split; a local full file holds all 974)."""
    return dataset.filter(lambda d: 11 <= int(d["task_id"]) <= 510)


# task -> (user turn, start of the answer as a Jinja template over the doc: lm-eval's gen_prefix)
PAPER_TURNS: dict[str, tuple[Any, str]] = {
    "paper_mmlu": (oi.mmlu_user, "The answer is:"),
    "paper_gsm8k": (oi.gsm8k_user, "Answer:"),
    "paper_humaneval": (oi.humaneval_user, oi.HUMANEVAL_ANSWER + "{{prompt}}"),
    "paper_mbpp": (oi.mbpp_user, CODE_PREFIX),
}


@functools.cache
def _template(text: str):
    import jinja2

    return jinja2.Template(text, keep_trailing_newline=True)


def answer_start(task: str, doc: dict[str, Any]) -> str:
    """The start of the assistant's answer of a paper task's doc (its gen_prefix, rendered once per doc)."""
    return _template(PAPER_TURNS[task][1]).render(**doc)


def tulu_prompt(task: str):
    """doc -> the Tulu-format prompt of a paper task: user turn, assistant header, the answer's start."""
    user = PAPER_TURNS[task][0]
    return lambda doc: render_prompt(user(doc)) + answer_start(task, doc)


def protocol_config(cfg: dict[str, Any], protocol: str) -> tuple[dict[str, Any], bool]:
    """A paper task's lm-eval config under ``protocol``, and whether lm-eval applies the model's chat template.

    The YAMLs render the Tulu prompt; "chat_template" swaps in the bare user turn and the answer's start as
    ``gen_prefix``. Toy tasks carry their own chat format and are returned unchanged.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"evaluation.protocol {protocol!r} is not one of {tuple(PROTOCOLS)}")
    task = cfg.get("task")
    if protocol == "tulu" or task not in PAPER_TURNS:
        return cfg, False
    user, prefix = PAPER_TURNS[task]
    return {**cfg, "doc_to_text": user, "gen_prefix": prefix}, True


def declared_samples(tasks_dir, task: str, sampling: dict[str, Any] | None = None) -> int:
    """Generations per item of a task: ``evaluation.sampling[task].samples``, else its YAML's ``repeats`` (1; also
    for a task lm-eval registers, which has no YAML here).

    Read without lm-eval (its ``!function`` tags are skipped), so a Snakefile can size an evaluate job's time
    by it before anything runs: a sampled HumanEval generates 20 times what a greedy one does.
    """
    from pkt.config_checks import task_yaml

    if (sampling or {}).get(task, {}).get("samples") is not None:
        return int(sampling[task]["samples"])
    return int((task_yaml(tasks_dir, task) or {}).get("repeats", 1))


# --------------------------------------------------------------------------- any other task
# evaluation.tasks is open: besides the tasks above, a YAML added to workflow/tasks (README: Add a task) or a task
# lm-eval registers. Their prompt and metric are the task's own; pkt.report.columns gives each a table column.


class UnknownTask(FileNotFoundError):
    """A task that is neither a YAML in workflow/tasks nor a task lm-eval registers."""


def registered_config(task: str, tasks_dir: Any = "workflow/tasks") -> dict[str, Any]:
    """The config dict of a task lm-eval registers (its own YAML, ``!function`` tags resolved, ``include`` merged),
    for a name with no YAML in ``tasks_dir``: evaluated as lm-eval defines it, its metric its metric_list's.

    A toy_*/paper_* name is the project's own and is not looked up (its YAML is missing). Raises
    :class:`UnknownTask` in one line naming the task where lm-eval has no such name, and where the name is a group
    or tag of several tasks (the tables take one score per task: name its tasks, or write a YAML of one's own).
    Indexing lm-eval's tasks takes seconds, so this runs only at evaluation.
    """
    from importlib.metadata import version

    from lm_eval.tasks._yaml_loader import load_yaml  # the loader TaskManager itself uses

    from pkt.config_checks import TASK_PREFIXES

    if task.startswith(TASK_PREFIXES):
        raise UnknownTask(f"evaluation.tasks: no lm-eval task {task!r}: {tasks_dir}/{task}.yaml does not exist "
                          "(toy_*/paper_* tasks are this project's own YAMLs; README: Add a task)")
    entry = _registry().task_index.get(task)
    if entry is None:
        raise UnknownTask(f"evaluation.tasks: no lm-eval task {task!r}: neither {tasks_dir}/{task}.yaml exists nor "
                          f"does lm-eval {version('lm_eval')} register it (`lm-eval ls subtasks` lists its tasks)")
    kind = entry.kind.name.lower()
    if kind not in ("task", "py_task") or entry.yaml_path is None:
        raise UnknownTask(f"evaluation.tasks: {task!r} is an lm-eval {kind.replace('py_', 'python ')}, not a task "
                          "with a YAML: the tables take one score per task, so name its tasks, or write a YAML")
    cfg = load_yaml(entry.yaml_path, resolve_func=True)
    cfg.pop("tag", None), cfg.pop("group", None)
    return {**cfg, "task": task}


@functools.cache
def _registry():
    """lm-eval's own task index, built once per process (seconds)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=True)


def prompt_protocol(task: str, protocol: str, shots: int = 0) -> str:
    """How a task's prompts reached the model, for its result: the toy chat format, the paper protocol of a paper
    task (:data:`PAPER_TURNS`), else the task's own prompt (its YAML's, with its ``metadata.shots``: Seeking's
    8-shot GSM8K and 5-shot MMLU)."""
    if task in PAPER_TURNS:
        return protocol
    return "toy chat format" if task.startswith("toy_") else f"the task's own prompt, {shots}-shot"
