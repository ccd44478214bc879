"""lm-eval glue: run one task on one model (optionally with a LoRA adapter) and keep provenance.

``simple_evaluate`` is called in-process with ``TaskManager(include_path=workflow/tasks,
include_defaults=False)`` (indexing lm-eval's own tasks costs ~15 s and is not needed). A task's
data location is patched into its config dict, so the toy tasks read the current run's split and the
paper tasks can read local files in the hub's schema instead of the hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any


def task_config(tasks_dir: str | os.PathLike[str], task: str, data: dict[str, Any] | None = None) -> dict:
    """The task's YAML as a config dict (``!function`` resolved), with its data location overridden.

    ``data`` may hold ``dataset_path``, ``dataset_name`` and ``data_files`` ({split: path}); relative
    paths are made absolute so that the working directory does not matter.
    """
    from lm_eval.tasks._yaml_loader import load_yaml  # the loader TaskManager itself uses

    path = Path(tasks_dir) / f"{task}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no lm-eval task {task!r}: {path} does not exist")
    cfg = load_yaml(path, resolve_func=True)
    if data:
        for key in ("dataset_path", "dataset_name"):
            if data.get(key) is not None:
                cfg[key] = data[key]
        if data.get("data_files"):
            files = {split: str(Path(f).resolve()) for split, f in data["data_files"].items()}
            missing = [f for f in files.values() if not Path(f).exists()]
            if missing:
                raise FileNotFoundError(f"task {task}: data file(s) not found: {missing}")
            cfg["dataset_kwargs"] = {**cfg.get("dataset_kwargs", {}), "data_files": files}
            if data.get("dataset_path") is None:  # local files: the json builder, no hub config name
                cfg["dataset_path"] = "json"
                if data.get("dataset_name") is None:
                    cfg.pop("dataset_name", None)
    return cfg


def primary_metric(cfg: dict) -> str:
    """The result key of the task's headline metric: '<first metric>,<first filter or none>'."""
    metric = cfg["metric_list"][0]["metric"]
    name = metric if isinstance(metric, str) else metric.__name__
    filters = cfg.get("filter_list") or [{"name": "none"}]
    return f"{name},{filters[0]['name']}"


def config_hash(obj: Any) -> str:
    """A short, order-independent hash of the settings that determine a result."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_task(
    model_dir: str | os.PathLike[str],
    task: str,
    tasks_dir: str | os.PathLike[str],
    data: dict[str, Any] | None = None,
    adapter_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    max_length: int | None = None,
    apply_chat_template: bool = False,
    limit: int | None = None,
    seed: int = 0,
    lm: Any = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Evaluate one task; return (summary with provenance, per-sample records).

    ``lm`` replaces the HF model (tests pass stub models whose answers are known).
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    cfg = task_config(tasks_dir, task, data)
    if lm is None:
        from lm_eval.models.huggingface import HFLM

        kwargs: dict[str, Any] = {"pretrained": str(model_dir), "batch_size": batch_size, "device": device,
                                  "dtype": "float32" if device == "cpu" else "bfloat16"}
        if adapter_dir:
            kwargs["peft"] = str(adapter_dir)
        if max_length:
            kwargs["max_length"] = max_length
        lm = HFLM(**kwargs)
    manager = TaskManager(include_path=str(tasks_dir), include_defaults=False)
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[cfg], task_manager=manager, num_fewshot=0, limit=limit, log_samples=True,
        apply_chat_template=apply_chat_template, confirm_run_unsafe_code=True, random_seed=seed,
        numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
    )
    wall = time.perf_counter() - start
    results = out["results"][task]
    key = primary_metric(cfg)
    metric_name = key.split(",")[0]
    summary = {
        "task": task,
        "metric": metric_name,
        "value": results[key],
        "stderr": results.get(key.replace(",", "_stderr,", 1)),
        "n": int(out["n-samples"][task]["effective"]),
        "metrics": {k: v for k, v in results.items() if k != "alias"},
        "lm_eval_version": _version("lm_eval"),
        "task_version": out.get("versions", {}).get(task, cfg.get("metadata", {}).get("version")),
        "apply_chat_template": apply_chat_template,
        "limit": limit,
        "seed": seed,
        "wall_s": round(wall, 2),
    }
    return summary, out["samples"][task]


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
