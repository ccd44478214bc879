"""Checks of the config that a JSON schema cannot express, run before the DAG is built.

The schema catches unknown keys, types and ranges; these catch cross-references: a pair naming a
model that does not exist, a teacher and student with different tokenizers, a head count that does
not divide the width, a comparison table against a row that will not exist. Each message names the
offending key. Kept free of Snakemake and torch so that ``common.smk`` can import it at parse time in
milliseconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pkt.config_settings import task_section
from pkt.rows import ABLATIONS, FULL, method_of

TASK_PREFIXES = ("toy_", "paper_")  # the project's own tasks (the toy world's, the papers' protocol): YAMLs here


class ConfigError(ValueError):
    """A config value that is well-typed but inconsistent with another."""


def config_errors(config: dict[str, Any], tasks_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Every cross-reference problem of a schema-valid config, as messages naming the keys; with ``tasks_dir``
    (workflow/tasks) also the evaluated tasks against their YAMLs (:func:`task_file_errors`)."""
    errors = [] if tasks_dir is None else task_file_errors(config["evaluation"], tasks_dir)
    models = config["models"]
    for name, m in models.items():
        if m["hidden_size"] % m["num_heads"]:
            errors.append(
                f"models.{name}: hidden_size {m['hidden_size']} is not divisible by num_heads {m['num_heads']}"
            )
        errors += _model_source_errors(name, m)
    errors += _data_errors(config)
    for pair, p in config["pairs"].items():
        for role in ("teacher", "student"):
            if p[role] not in models:
                errors.append(f"pairs.{pair}.{role}: no model named {p[role]!r} in models ({sorted(models)})")
        if p["teacher"] in models and p["student"] in models:
            t, s = models[p["teacher"]], models[p["student"]]
            if t["tokenizer"] != s["tokenizer"]:
                errors.append(
                    f"pairs.{pair}: teacher {p['teacher']!r} uses tokenizer {t['tokenizer']!r} but student "
                    f"{p['student']!r} uses {s['tokenizer']!r}; a pair needs one shared vocabulary"
                )
    if "seeking" in config["methods"]:
        errors += _seeking_errors(config)
    if "laten" in config["methods"]:
        errors += _laten_errors(config)
    errors += _task_key_errors(config)
    errors += run_name_errors(config)
    errors += _transfer_errors(config)
    sem = config.get("semalign", {})
    checked = {"analysis_task": sem.get("analysis_task"), "ablation.task": sem.get("ablation", {}).get("task")}
    for key, task in checked.items():
        if "semalign" in config["methods"] and task is not None and task not in config["evaluation"]["tasks"]:
            errors.append(f"semalign.{key}: {task!r} is not one of evaluation.tasks {config['evaluation']['tasks']}")
    if config["evaluation"].get("backend") == "vllm" and config["device"] == "cpu":
        errors.append("evaluation.backend: vllm serves models on a GPU, but device is cpu (use hf, or device auto)")
    for task, sampling in config["evaluation"].get("sampling", {}).items():
        if task not in config["evaluation"]["tasks"]:
            errors.append(f"evaluation.sampling.{task}: {task!r} is not one of evaluation.tasks")
        if sampling.get("temperature") == 0 and sampling.get("samples", 1) > 1:
            errors.append(f"evaluation.sampling.{task}: {sampling['samples']} greedy samples (temperature 0) would "
                          "be copies; set samples: 1 or a temperature > 0")
    rows = ["student", "teacher", *config["methods"]]
    reference = config.get("tables", {}).get("reference")
    if reference is not None and reference not in rows:
        errors.append(f"tables.reference: {reference!r} is not a row of the table; choose from {rows} (or null: "
                      "lora when it runs, else the student)")
    return errors


def table_reference(config: dict[str, Any]) -> str:
    """The row the comparison table subtracts: ``tables.reference``, or (null) lora when it runs, else the
    student (a config with ``methods: [kd]`` compares KD with the student it started from)."""
    reference = config.get("tables", {}).get("reference")
    if reference is not None:
        return reference
    return "lora" if "lora" in config["methods"] else "student"


def _model_source_errors(name: str, m: dict[str, Any]) -> list[str]:
    """A toy model needs a corpus and a pretraining recipe; a hub model needs its vocabulary size and no recipe."""
    if "hub" in m:
        errors = [f"models.{name}.{key}: a hub model is not pretrained here; remove it"
                  for key in ("corpus", "pretrain") if key in m]
        errors += [f"models.{name}.{key}: required for a hub model (its config.json's {hf})"
                   for key, hf in (("vocab_size", "vocab_size"), ("architecture", "architectures[0]")) if key not in m]
        return errors
    errors = [f"models.{name}.{key}: required for a toy model (or give models.{name}.hub)"
              for key in ("corpus", "pretrain") if key not in m]
    if "pretrain" in m and m["pretrain"]["seq_len"] > m.get("max_position_embeddings", 512):
        errors.append(f"models.{name}.pretrain.seq_len exceeds models.{name}.max_position_embeddings")
    return errors


def task_yaml(tasks_dir: str | os.PathLike[str], task: str) -> dict[str, Any] | None:
    """A task's YAML in ``tasks_dir`` as plain data (``!function`` tags read as None), or None where it has none:
    read without lm-eval, whose import takes seconds, so that the DAG can be planned from it."""
    import yaml

    path = Path(tasks_dir) / f"{task}.yaml"
    if not path.is_file():
        return None

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load(path.read_text(), Loader=Loader) or {}


def task_file_errors(evaluation: dict[str, Any], tasks_dir: str | os.PathLike[str]) -> list[str]:
    """``evaluation.tasks`` against the task YAMLs, one line per problem naming ``evaluation.tasks[i]``.

    A toy_*/paper_* name is one of the project's own tasks, so its YAML must be in ``tasks_dir``; a YAML must be
    named after its ``task:`` key (lm-eval reports a task under that key). Any other name without a YAML is left
    to lm-eval's registry (``arc_easy``): looking it up here would import lm-eval at every parse, so evaluation
    names it if lm-eval does not know it either (pkt.evaluation.tasks.registered_config). ``evaluation.sampling``
    of a YAML task that does not generate is named too (a registered one's is refused at evaluation).
    """
    where, errors = "/".join(Path(tasks_dir).parts[-2:]), []
    for task in evaluation.get("sampling") or {}:
        kind = (task_yaml(tasks_dir, task) or {}).get("output_type", "generate_until")
        if kind != "generate_until":
            errors.append(f"evaluation.sampling.{task}: {task} does not generate (output_type {kind}); sampling "
                          "applies to generate_until tasks")
    for i, task in enumerate(evaluation["tasks"]):
        cfg = task_yaml(tasks_dir, task)
        if cfg is None and task.startswith(TASK_PREFIXES):
            errors.append(f"evaluation.tasks[{i}]: {task!r} is neither a YAML in {where} ({task}.yaml) nor an "
                          f"lm-eval task ({'/'.join(p + '*' for p in TASK_PREFIXES)} are this project's own; "
                          "README: Add a task)")
        elif cfg is not None and cfg.get("task") != task:
            errors.append(f"evaluation.tasks[{i}]: {where}/{task}.yaml names task {cfg.get('task')!r}; a task's "
                          "YAML is named after its task: key, which lm-eval reports it under")
    return errors


def train_task_of(config: dict[str, Any]) -> dict[str, str]:
    """{evaluated task: the task whose splits its adapter trains on}: ``evaluation.train_task``, else itself."""
    named = config["evaluation"].get("train_task") or {}
    return {task: named.get(task, task) for task in config["evaluation"]["tasks"]}


def trained_tasks(config: dict[str, Any]) -> list[str]:
    """The tasks adapters train on: each evaluation's (:func:`train_task_of`), and the AlpacaFarm evaluation's
    (``seeking_eval.alpaca_farm.train_task``: Seeking's LIMA set) where it is enabled."""
    alpaca = (config.get("seeking_eval") or {}).get("alpaca_farm") or {}
    judged = [alpaca.get("train_task", "seeking_lima")] if alpaca.get("enabled") else []
    return list(dict.fromkeys([*train_task_of(config).values(), *judged]))


def prepared_tasks(config: dict[str, Any]) -> list[str]:
    """The tasks whose splits prepare_data writes: every task of the toy world; of the papers' files, those the run
    trains on or evaluates (a Seeking overlay keeps config.yaml's LaTen files, which it never reads)."""
    tasks = tasks_of(config)
    if config["data"]["source"] != "paper":
        return tasks
    used = {*trained_tasks(config), *config["evaluation"]["tasks"], *transfer_sources(config)}
    return [t for t in tasks if t in used]


def transfer_sources(config: dict[str, Any]) -> list[str]:
    """The tasks Seeking's task-transfer rows extract from (``seeking.transfer``)."""
    return list(config.get("seeking", {}).get("transfer") or [])


def _transfer_errors(config: dict[str, Any]) -> list[str]:
    """A transfer row extracts from a task with splits, beside the seeking row whose diagonal it repeats."""
    sources, tasks = transfer_sources(config), tasks_of(config)
    errors = [f"seeking.transfer: {t!r} has no splits to extract from (splits exist for {tasks})"
              for t in sources if t not in tasks]
    if sources and "seeking" not in config["methods"]:
        errors.append("seeking.transfer: the transfer table compares with the seeking row; add seeking to methods")
    judged = [t for t in trained_tasks(config) if t not in train_task_of(config).values()]
    errors += [f"seeking_eval.alpaca_farm.train_task: {t!r} has no splits to train on (splits exist for {tasks})"
               for t in judged if t not in tasks]
    ablated = config.get("seeking", {}).get("ablation") or []
    if ablated and "seeking" not in config["methods"]:
        errors.append("seeking.ablation: each variant is compared with the seeking row; add seeking to methods")
    seeking = config.get("seeking", {})
    changed = [f"seeking.{key} is {seeking[key]!r}" for key in ("layers", "structure") if key in ablated
               and seeking.get(key, FULL[key]) != FULL[key]]
    groups = set(ABLATIONS["modules"])  # every module group, each one a variant of the module ablation
    if "modules" in ablated and set(seeking.get("modules", groups)) != groups:
        changed.append(f"seeking.modules is {seeking['modules']}")
    errors += [f"seeking.ablation: the seeking row is the full method its variants change one switch of, but "
               f"{what} (the full method's: {FULL})" for what in changed]
    return errors


def splits_of(config: dict[str, Any], tasks: list[str]) -> dict[str, list[str]]:
    """{task: its splits}: the toy world's four, or the files a papers' task lists (Seeking's have no align)."""
    if config["data"]["source"] != "paper":
        return {task: ["train", "extract", "align", "test"] for task in tasks}
    files = config["data"]["paper"]["files"]
    return {task: [s for s in ("train", "extract", "align") if s in files[task]] for task in tasks}


def tasks_of(config: dict[str, Any]) -> list[str]:
    """The tasks that have train/extract/align splits: the toy world's, or the paper splits' (data.paper.files)."""
    if config["data"]["source"] == "paper":
        return list(config["data"].get("paper", {}).get("files", {}))
    return list(config["world"]["splits"])


def _data_errors(config: dict[str, Any]) -> list[str]:
    """Paper data needs its files; every evaluated task needs train splits; toy and hub models do not mix."""
    data, errors = config["data"], []
    if data["source"] == "paper" and "paper" not in data:
        errors.append("data.paper: required when data.source is paper (location and files of the LaTen splits)")
    tasks, evaluated = tasks_of(config), config["evaluation"]["tasks"]
    named = config["evaluation"].get("train_task", {})
    errors += [f"evaluation.train_task.{t}: {t!r} is not one of evaluation.tasks" for t in named if t not in evaluated]
    trained = train_task_of(config)
    missing = [t for t in evaluated if trained[t] not in tasks]
    if missing and config["methods"]:
        errors.append(f"evaluation.tasks: {missing} have no train splits under data.source {data['source']!r} "
                      f"(splits exist for {tasks}; evaluation.train_task names another task's)")
    if data["source"] == "paper":
        aligned = {"semalign", "laten"} & {method_of(m) for m in config["methods"]}
        for task in dict.fromkeys(trained.values()):
            if aligned and "align" not in data.get("paper", {}).get("files", {}).get(task, {"align": 1}):
                errors.append(f"data.paper.files.{task}: no align split, which {sorted(aligned)} train on")
    if not config["pairs"]:
        errors.append(f"pairs: no pair of {data['source']} models (data.source {data['source']!r}: "
                      + ("toy models, no hub key)" if data["source"] == "toy" else "hub models, with a hub key)"))
    return errors


def active(config: dict[str, Any]) -> dict[str, Any]:
    """The config with only the models and pairs of its data source: toy models for the toy world, hub models
    for the paper data. A paper config is merged over config/config.yaml (Snakemake merges, never removes),
    so the default toy models and pair are still there; they take no part in a paper run."""
    hub = config["data"]["source"] == "paper"
    models = {name: m for name, m in config["models"].items() if ("hub" in m) == hub}
    known = config["models"]
    unknown = {name: p for name, p in config["pairs"].items() if p["teacher"] not in known or p["student"] not in known}
    pairs = {name: p for name, p in config["pairs"].items() if p["teacher"] in models and p["student"] in models}
    pairs.update(unknown)  # check_config names the missing model
    mixed = [name for name, p in config["pairs"].items()
             if name not in unknown and (p["teacher"] in models) != (p["student"] in models)]
    if mixed:
        raise ConfigError(f"pairs {mixed}: a pair's teacher and student must both be toy or both be hub models")
    chosen = config.get("run_pairs")
    if chosen:  # an overlay over another that has pairs of its own (seeking-llama1.yaml over seeking.yaml)
        missing = [name for name in chosen if name not in pairs]
        if missing:
            raise ConfigError(f"run_pairs: {missing} are not pairs of this config ({sorted(pairs)})")
        pairs = {name: pairs[name] for name in chosen}
        used = {p[role] for p in pairs.values() for role in ("teacher", "student")}
        models = {name: m for name, m in models.items() if name in used}
    return {**config, "models": models, "pairs": pairs}


def _seeking_errors(config: dict[str, Any]) -> list[str]:
    """Seeking cuts student-shaped blocks out of teacher matrices: the teacher must be at least as large."""
    errors, models = [], config["models"]
    for pair, p in config["pairs"].items():
        t, s = models.get(p["teacher"]), models.get(p["student"])
        if t is None or s is None:
            continue
        for key in ("num_layers", "hidden_size", "intermediate_size"):
            if t[key] < s[key]:
                errors.append(f"pairs.{pair}: methods has seeking, which needs the teacher's {key} ({t[key]}) "
                              f">= the student's ({s[key]})")
        if config["lora"]["r"] > s["hidden_size"]:
            errors.append(f"lora.r: {config['lora']['r']} exceeds pairs.{pair}'s student hidden_size "
                          f"({s['hidden_size']}): seeking's SVD has no such rank")
    k = config.get("seeking", {}).get("k") or 1
    for task in trained_tasks(config):  # the tasks adapters train on
        size, where = extract_size(config, task)
        if size is not None and size < k:
            errors.append(f"seeking.k: {k} exceeds the extract split of {task}: {where} has {size} rows")
    return errors


def extract_size(config: dict[str, Any], task: str) -> tuple[int | None, str]:
    """Rows of a task's extract split, and where that number comes from: the toy world's split size, or the
    pinned record count of the papers' file (cut by ``data.paper.limit``)."""
    if config["data"]["source"] == "paper":
        file = config["data"].get("paper", {}).get("files", {}).get(task, {}).get("extract")
        if file is None:
            return None, ""
        limit = config["data"]["paper"].get("limit")
        size = file["records"] if limit is None else min(file["records"], limit)
        cut = "" if limit is None or limit >= file["records"] else f", cut to data.paper.limit {limit}"
        return size, f"data.paper.files.{task}.extract ({file['path']}, {file['records']} records{cut})"
    size = config["world"]["splits"].get(task, {}).get("extract")
    return size, f"world.splits.{task}.extract"


def _laten_errors(config: dict[str, Any]) -> list[str]:
    """LaTen injects int(rate x units) vectors per student layer and trains on the extract split: its OneCycle
    schedule spans the whole split (one step per row, as train_LaTen.py:194-202), so a task's ``steps`` (the
    translator injected) cannot exceed the split's rows."""
    errors, models = [], config["models"]
    laten = config.get("laten", {})
    rate = laten.get("rate", 0.1)
    for pair, p in config["pairs"].items():
        s = models.get(p["student"])
        if s is None:
            continue
        for key in ("intermediate_size", "hidden_size"):
            if int(s[key] * rate) < 1:
                errors.append(f"laten.rate: {rate} selects no unit of pairs.{pair}'s student ({key} {s[key]})")
    for task in dict.fromkeys(train_task_of(config).values()):
        size, where = extract_size(config, task)
        if size is not None and size < 1:
            errors.append(f"{where.split(' (')[0]}: empty, and laten trains its translator on it ({where})")
            continue
        steps = task_section(laten, task).get("steps", 4)
        if size is not None and steps > size:
            key = f"laten.tasks.{task}.steps" if "steps" in laten.get("tasks", {}).get(task, {}) else "laten.steps"
            errors.append(f"{key}: {steps} exceeds the extract split of {task}: {where} has {size} "
                          "rows (LaTen's schedule spans the split, one step per row)")
    return errors


def _task_key_errors(config: dict[str, Any]) -> list[str]:
    """Every per-task map (semalign.align.tasks, laten.tasks, train.per_method.<method>.tasks) names tasks the
    config evaluates or has splits for: a misspelt task would otherwise be ignored without a word. (A config
    merged over another keeps the other's entries, e.g. paper-code.yaml over paper.yaml evaluates two of the
    four paper tasks, so a task with splits that is not evaluated here is allowed.)"""
    known = list(dict.fromkeys([*config["evaluation"]["tasks"], *tasks_of(config)]))
    maps = {"semalign.align.tasks": config.get("semalign", {}).get("align", {}).get("tasks", {}),
            "laten.tasks": config.get("laten", {}).get("tasks", {}),
            **{f"train.per_method.{method}.tasks": own.get("tasks", {})
               for method, own in config.get("train", {}).get("per_method", {}).items()}}
    return [f"{name}.{task}: {task!r} is not a task of this config (evaluation.tasks or the splits: {known})"
            for name, by_task in maps.items() for task in by_task if task not in known]


def check_config(config: dict[str, Any], tasks_dir: str | os.PathLike[str] | None = None,
                 extra: list[str] | None = None) -> None:
    """Raise one ConfigError listing every problem found by :func:`config_errors`, and the ``extra`` problems the
    caller found with the checks of upper wings (a task's data file, an API key), all at once."""
    errors = config_errors(config, tasks_dir) + list(extra or [])
    if errors:
        raise ConfigError(f"invalid config ({len(errors)} problem{'s' * (len(errors) > 1)}):\n  " + "\n  ".join(errors))


def run_name_errors(config: dict[str, Any]) -> list[str]:
    """A run of hub models (or the papers' data) under run_name toy would write over the toy run's tracked
    results (results/toy: tables, DVC outputs): its run needs a name of its own."""
    hub = [name for name, m in config["models"].items() if "hub" in m]
    if config["run_name"] == "toy" and (hub or config["data"]["source"] != "toy"):
        return [f"run_name: required for this run ({'hub models ' + ', '.join(hub) if hub else 'data.source paper'}); "
                "run_name toy is the toy run's, whose results/toy it would overwrite"]
    return []
