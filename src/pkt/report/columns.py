"""The score columns of the tables, named by task: the papers' four benchmarks and any other task's own.

The four benchmarks of the papers' Table 1 keep their labels whether evaluated on the toy world, with the papers'
protocol or as lm-eval's own task (``toy_gsm8k``, ``paper_gsm8k`` and ``gsm8k`` all fill GSM8K), and only they enter
Average and Gap to teacher, so those two mean what the papers' do. Any other task (a YAML added to
``workflow/tasks`` or a task lm-eval registers) gets a column of its own, named by the task without the project's
``toy_``/``paper_`` prefix (``paper_arc`` -> ``arc``, ``hellaswag`` -> ``hellaswag``), shown after those two.
"""

from __future__ import annotations

from collections.abc import Iterable

BENCHMARKS = {"mmlu": "MMLU", "gsm8k": "GSM8K", "humaneval": "HumanEval", "mbpp": "MBPP"}
PREFIXES = ("toy_", "paper_")  # the project's own tasks: the toy world's and the papers' protocol
SUBSETS = {"held_out": "held-out", "control": "control"}  # item group -> suffix of its extra column
# Each benchmark is followed by its subsets (only toy_mmlu has any): MMLU, MMLU held-out, MMLU control, GSM8K...
COLUMNS = [c for b in BENCHMARKS.values() for c in (b, *(f"{b} {s}" for s in SUBSETS.values()))]
# Labels a task's column may not take: the four benchmarks' (unless it is one) and the tables' other columns.
RESERVED = {*BENCHMARKS.values(), "Average", "Gap to teacher", "Model", "Pair", "Seeds", "identical_to"}


def bare_name(task: str) -> str:
    """'paper_gsm8k' -> 'gsm8k', 'toy_arith' -> 'arith', 'hellaswag' -> 'hellaswag': the task without a project
    prefix (a name that is only the prefix keeps it)."""
    for prefix in PREFIXES:
        if task.startswith(prefix) and len(task) > len(prefix):
            return task[len(prefix):]
    return task


def column_of(task: str) -> str:
    """The column a task's score fills: one of the four benchmarks' labels, else the task's bare name.

    Raises ValueError for a bare name that is already another column's label ('toy_Average', 'paper_MMLU'),
    which would otherwise merge into that column.
    """
    bare = bare_name(task)
    if bare in BENCHMARKS:
        return BENCHMARKS[bare]
    if bare in RESERVED:
        raise ValueError(f"task {task!r}: its column would be named {bare!r}, a label the tables already use; "
                         "rename the task")
    return bare


def benchmark_of(task: str) -> str:
    """'toy_gsm8k' / 'paper_gsm8k' -> 'GSM8K'; ValueError for a task that is not one of the four benchmarks."""
    if bare_name(task) not in BENCHMARKS:
        raise ValueError(f"task {task!r} is not one of the four benchmarks {sorted(BENCHMARKS)}")
    return BENCHMARKS[bare_name(task)]


def subset_column(benchmark: str, group: str) -> str:
    """('MMLU', 'held_out') -> 'MMLU held-out': the extra column of the items of one group."""
    if group not in SUBSETS:
        raise ValueError(f"item group {group!r} is not one of {sorted(SUBSETS)}")
    return f"{benchmark} {SUBSETS[group]}"


def extra_columns(present: Iterable[str]) -> list[str]:
    """The columns among ``present`` that are neither a benchmark nor a benchmark's subset: the other tasks'
    (each followed by its own subsets, if its items carry groups), sorted by name."""
    present = list(dict.fromkeys(present))
    subsets = {subset_column(c, g) for c in present for g in SUBSETS}
    extras = sorted(c for c in present if c not in COLUMNS and c not in subsets and c not in RESERVED)
    return [c for e in extras for c in (e, *(s for s in (subset_column(e, g) for g in SUBSETS) if s in present))]


def score_columns(present: Iterable[str]) -> list[str]:
    """The score columns of ``present`` in table order: the benchmarks with their subsets, then the other tasks'."""
    present = list(present)
    return [c for c in COLUMNS if c in present] + extra_columns(present)


def task_columns(present: Iterable[str]) -> list[str]:
    """The columns of ``present`` that hold a whole task's items (no subset): the four benchmarks' and the others'."""
    present = list(present)
    extras = extra_columns(present)
    subsets = {subset_column(e, g) for e in extras for g in SUBSETS}
    return [b for b in BENCHMARKS.values() if b in present] + [e for e in extras if e not in subsets]


def extras_note(present: Iterable[str], summaries: bool = True) -> str:
    """The caption's sentence on the other tasks' columns ('' when there are none): what they hold and, with
    ``summaries`` (the main table), that Average and Gap to teacher leave them out."""
    extras = [c for c in task_columns(present) if c not in BENCHMARKS.values()]
    if not extras:
        return ""
    these = "is a task" if len(extras) == 1 else "are tasks"
    note = (f"{', '.join(extras)} {these} besides the papers' four benchmarks, scored by the task's own lm-eval "
            "headline metric (the first of its metric_list)")
    return note + ("; Average and Gap to teacher are over MMLU, GSM8K, HumanEval and MBPP only." if summaries else ".")
