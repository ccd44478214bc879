"""How a checked config becomes each job's settings: a method's, a task's, a row's (``params:`` of the rules).

The sections of the config are shared by many rows (``lora`` by every method, ``train`` with per-method and per-task
overrides, the papers' per-task recipes); each function here resolves one job's view. A root helper, read at every
parse of the workflow, importing nothing heavier than :mod:`pkt.rows`.
"""

from __future__ import annotations

from typing import Any

from pkt.rows import BUILTIN, fixed_row


def train_settings(train: dict[str, Any], method: str, tasks: list[str], max_length: int) -> dict[str, dict]:
    """{task: the train section with ``train.per_method[method]`` and its ``tasks[task]`` entries applied (a task's
    entry wins over its method's), plus ``max_length``}: the papers' recipes differ by method and task (SemAlign v1:
    5 epochs, but 3 at lr 3e-5 on HumanEval)."""
    base = {k: v for k, v in train.items() if k != "per_method"}
    own = dict(train.get("per_method", {}).get(method, {}))
    by_task = own.pop("tasks", {})
    return {task: {**base, **own, **by_task.get(task, {}), "max_length": max_length} for task in tasks}


def task_section(section: dict[str, Any], task: str) -> dict[str, Any]:
    """``section`` with its ``tasks[task]`` entry applied (a task's entry wins) and the ``tasks`` map dropped: the
    shape of ``train.per_method.<method>.tasks``, for sections whose paper values differ by task
    (``semalign.align``: v1 Appendix A.2's 2/4/3/8 alignment steps; ``laten``: the injected step)."""
    return {**{k: v for k, v in section.items() if k != "tasks"}, **section.get("tasks", {}).get(task, {})}


def semalign_settings(config: dict[str, Any], task: str) -> dict[str, Any]:
    """pkt.methods.semalign.method.SemAlignSettings of one task, from the lora (r, alpha, dropout) and semalign
    sections (``semalign.align.tasks[task]`` over ``semalign.align``)."""
    sem, lora = config["semalign"], config["lora"]
    align = task_section(sem["align"], task)
    return {**{k: lora[k] for k in ("r", "alpha", "dropout")}, "target_modules": sem["target_modules"],
            "variant": sem["variant"], "map": sem["map"], "layer_weight": sem["weights"]["layer"],
            "output_weight": sem["weights"]["output"], "ce_weight": sem["weights"]["ce"],
            "align_steps": align["steps"], "align_lr": align["lr"]}


def method_settings(config: dict[str, Any], method: str, tasks: list[str]) -> dict[str, dict[str, Any]]:
    """{task: the settings of a method's config dataclass (pkt.methods.<method>)}: the lora section and the
    method's own, with its per-task entries applied where it has them (semalign.align.tasks, laten.tasks). A
    method that is not built in has the lora section and its own, ``<method>:`` (its fields beyond LoraSettings,
    defaults filled in from its dataclass by the schema: pkt.methods.schema)."""
    lora = {k: config["lora"][k] for k in ("r", "alpha", "dropout")}
    if fixed_row(method):  # a row with settings fixed over its method's section (semalign_cosine)
        base, fixed = fixed_row(method)
        return {task: {**settings, **fixed} for task, settings in method_settings(config, base, tasks).items()}

    def of(task: str) -> dict[str, Any]:
        if method == "semalign":
            return semalign_settings(config, task)
        if method == "kd":
            return {**config["lora"], "kd_alpha": config["kd"]["alpha"], "temperature": config["kd"]["temperature"]}
        if method == "fitnet":
            fit = config["fitnet"]
            return {**lora, "target_modules": config["semalign"]["target_modules"], "loss": fit["loss"],
                    "layer_weight": fit["weights"]["layer"], "ce_weight": fit["weights"]["ce"]}
        if method == "laten":
            return task_section(config["laten"], task)
        if method not in BUILTIN:
            return {**config["lora"], **config.get(method, {})}
        return dict(config["lora"])

    return {task: of(task) for task in tasks}


def semalign_tasks(config: dict[str, Any]) -> dict[str, Any]:
    """``semalign.analysis_task`` and ``semalign.ablation`` with a null task resolved to one of the run's own
    (config/config.yaml leaves both null, so an overlay for another pair never inherits a toy task): the analysis
    on the run's HumanEval task, as the paper's figures, else its first; the ablation on toy_mmlu where it is
    evaluated (its held-out facts ask the transfer question), else the HumanEval task, else the first."""
    sem, tasks = config["semalign"], config["evaluation"]["tasks"]
    humaneval = [t for t in tasks if t.endswith("_humaneval")]
    first = (humaneval or tasks)[0]
    analysis = sem.get("analysis_task") or first
    ablation = sem["ablation"].get("task") or ("toy_mmlu" if "toy_mmlu" in tasks else first)
    return {"analysis_task": analysis, "ablation": {**sem["ablation"], "task": ablation}}
