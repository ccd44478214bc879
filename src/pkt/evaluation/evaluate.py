"""lm-eval glue: load a model once, run each task (with the task's LoRA adapter) and keep provenance.

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


def load_lm(
    model_dir: str | os.PathLike[str],
    adapters: dict[str, str | os.PathLike[str]] | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    max_length: int | None = None,
    merge: bool = False,
) -> Any:
    """One lm-eval ``HFLM`` over a model loaded once, for every task of an evaluate job.

    With ``adapters`` ({name: adapter dir}, e.g. one per task and seed) :func:`use_adapter` picks the active
    one. By default the model is a ``PeftModel`` holding each adapter under its name. With ``merge`` the
    plain model is kept and :func:`use_adapter` evaluates a copy of it with the adapter merged into the
    weights (W + s B A): the same function without peft's per-module LoRA branch, about twice as fast to
    generate from on CPU for a toy model, at the cost of a second copy of the weights. A model whose LM head
    is tied to its input embedding (SmolLM2, Qwen2.5) gets its own copy of the head before any adapter is
    applied (:func:`pkt.models.build.untie_output_head`): the embedding's and the head's LoRA then change
    only their own module, merged or not, and lm-eval's re-tying (``tie_weights``) has nothing to undo.
    Loading once matters: the model and tokenizer load, not the scoring, is most of a toy task's time.
    """
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pkt.models.build import run_dtype, untie_output_head

    dtype = getattr(torch, run_dtype(device))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
    if adapters:
        untie_output_head(model)
    if adapters and not merge:
        from peft import PeftModel

        (first, path), *rest = adapters.items()
        model = PeftModel.from_pretrained(model, str(path), adapter_name=first)
        for name, path in rest:
            model.load_adapter(str(path), adapter_name=name)
    model.eval()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length)
    if adapters and merge:
        lm.pkt_merge = {"base": model, "adapters": {k: Path(v) for k, v in adapters.items()}}
    return lm


def use_adapter(lm: Any, name: str) -> None:
    """Make adapter ``name`` the active one of an ``HFLM`` built by :func:`load_lm` with adapters."""
    merging = getattr(lm, "pkt_merge", None)
    known = merging["adapters"] if merging else getattr(lm.model, "peft_config", {})
    if name not in known:
        raise KeyError(f"no adapter named {name!r}; loaded: {sorted(known)}")
    if not merging:
        lm.model.set_adapter(name)
        return
    import copy

    from peft import PeftModel

    merged = PeftModel.from_pretrained(copy.deepcopy(merging["base"]), str(merging["adapters"][name]))
    lm._model = merged.merge_and_unload().eval()  # HFLM scores and generates with ``_model``


def run_task(
    lm: Any,
    task: str,
    tasks_dir: str | os.PathLike[str],
    data: dict[str, Any] | None = None,
    protocol: str = "tulu",
    limit: int | None = None,
    seed: int = 0,
    max_gen_toks: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Evaluate one task with an lm-eval model; return (summary with provenance, per-sample records).

    ``lm`` is an ``HFLM`` from :func:`load_lm`, or a stub whose answers are known (tests). ``protocol``
    renders a paper task's prompt in the Tulu format ("tulu", the published rows) or through the model's own
    chat template ("chat_template", :func:`pkt.evaluation.tasks.protocol_config`); ``max_gen_toks`` caps generation.
    The summary     holds the headline metric with its stderr, every per-item score (``items``: the paired bootstrap
    of the tables needs them) and, for tasks whose documents carry ``known_by_student``, the accuracy
    on held-out and control items separately (``subsets``).
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    from pkt.evaluation.tasks import protocol_config

    _environment_once()
    cfg, apply_chat_template = protocol_config(task_config(tasks_dir, task, data), protocol)
    if max_gen_toks is not None and "generation_kwargs" in cfg:
        cfg["generation_kwargs"] = {**cfg["generation_kwargs"], "max_gen_toks": int(max_gen_toks)}
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
    samples = out["samples"][task]
    items = item_scores(samples, metric_name)
    summary = {
        "task": task,
        "metric": metric_name,
        "value": results[key],
        "stderr": results.get(key.replace(",", "_stderr,", 1)),
        "n": int(out["n-samples"][task]["effective"]),
        "metrics": {k: v for k, v in results.items() if k != "alias"},
        "subsets": subset_scores(items),
        "items": items,
        "lm_eval_version": _version("lm_eval"),
        "task_version": out.get("versions", {}).get(task, cfg.get("metadata", {}).get("version")),
        "protocol": protocol if task.startswith("paper_") else "toy chat format",
        "limit": limit,
        "max_gen_toks": max_gen_toks,
        "seed": seed,
        "wall_s": round(wall, 2),
    }
    return summary, samples


def task_options(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The :func:`run_task` keywords that the config's ``evaluation`` section sets for every task."""
    return {key: evaluation.get(key) for key in ("limit", "max_gen_toks")} | {
        "protocol": evaluation.get("protocol", "tulu")}


def _environment_once() -> None:
    """Collect lm-eval's environment report once per process, not at every ``simple_evaluate`` call.

    lm-eval adds torch's ``collect_env`` report to every result, which runs about a dozen subprocesses
    (~1 s); an evaluate job calls ``simple_evaluate`` once per task and adapter (12 times), and the
    environment does not change in between. The report itself is unchanged.
    """
    import functools

    from torch.utils import collect_env

    if not hasattr(collect_env.get_pretty_env_info, "cache_info"):
        collect_env.get_pretty_env_info = functools.cache(collect_env.get_pretty_env_info)


GROUPS = {True: "control", False: "held_out"}  # toy_mmlu: did the student's corpus hold the fact?


def item_scores(samples: list[dict[str, Any]], metric: str) -> dict[str, list]:
    """Per-item scores in document order: ``{"id": [...], "score": [...], "group": [...]}``.

    ``id`` is the document's own id (its ``doc_id`` position when it has none), so items can be
    paired across models; ``group`` is ``held_out`` / ``control`` for documents that say whether the
    student saw the fact, else None.
    """
    ordered = sorted(samples, key=lambda s: s["doc_id"])
    known = [s["doc"].get("known_by_student") for s in ordered]
    return {
        "id": [str(s["doc"].get("id", s["doc_id"])) for s in ordered],
        "score": [float(s[metric]) for s in ordered],
        "group": [GROUPS.get(k) if isinstance(k, bool) else None for k in known],
    }


def subset_scores(items: dict[str, list]) -> dict[str, dict[str, float]]:
    """Mean score and count per group of :func:`item_scores` (empty when no item has a group)."""
    out: dict[str, dict[str, float]] = {}
    for group in ("held_out", "control"):
        scores = [s for s, g in zip(items["score"], items["group"]) if g == group]
        if scores:
            out[group] = {"value": sum(scores) / len(scores), "n": len(scores)}
    return out


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
