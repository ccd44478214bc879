"""lm-eval glue: load a model once, run each task (with the task's LoRA adapter) and keep provenance.

``simple_evaluate`` is called in-process with ``TaskManager(include_path=workflow/tasks,
include_defaults=False)`` (indexing lm-eval's own tasks costs ~15 s: only a task named in
evaluation.tasks without a YAML there is looked up in that index, once, for its config). A task's
data location is patched into its config dict, so the toy tasks read the current run's split and the
paper tasks can read local files in the hub's schema instead of the hub.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pkt.data.manifest import check_scored, data_identity
from pkt.io import sha256_file

log = logging.getLogger(__name__)


def task_config(tasks_dir: str | os.PathLike[str], task: str, data: dict[str, Any] | None = None) -> dict:
    """The task's YAML as a config dict (``!function`` resolved), with its data location overridden.

    ``data`` may hold ``dataset_path``, ``dataset_name`` and ``data_files`` ({split: path}); relative
    paths are made absolute so that the working directory does not matter.
    """
    from lm_eval.tasks._yaml_loader import load_yaml  # the loader TaskManager itself uses

    from pkt.evaluation.tasks import registered_config

    path = Path(tasks_dir) / f"{task}.yaml"  # else a task lm-eval registers (UnknownTask, naming it, if none)
    cfg = load_yaml(path, resolve_func=True) if path.is_file() else registered_config(task, tasks_dir)
    if data:
        for key in ("dataset_path", "dataset_name"):
            if data.get(key) is not None:
                cfg[key] = data[key]
        if data.get("data_files"):
            files = {split: str(Path(f).resolve()) for split, f in data["data_files"].items()}
            missing = [f for f in files.values() if not Path(f).exists()]
            if missing:
                raise FileNotFoundError(f"task {task}: data file(s) not found: {missing}")
            cfg["dataset_kwargs"] = {**cfg.get("dataset_kwargs", {}), "data_files": files,
                                     "cache_dir": content_cache(files.values())}
            if data.get("dataset_path") is None:  # local files: the json builder, no hub config name
                cfg["dataset_path"] = "json"
                if data.get("dataset_name") is None:
                    cfg.pop("dataset_name", None)
    return cfg


def content_cache(files: Iterable[str | os.PathLike[str]]) -> str:
    """A datasets cache folder keyed by the data files' content. The HF datasets cache behind lm-eval keys a
    local file by its path and modification time, so a split rewritten within the same second (same path,
    same size) was served as its earlier version; under a folder named by the bytes it cannot be."""
    from datasets import config as datasets_config

    digest = hashlib.sha256("".join(sorted(sha256_file(f) for f in files)).encode()).hexdigest()[:16]
    return str(Path(datasets_config.HF_DATASETS_CACHE) / "pkt-by-content" / digest)


def primary_metric(cfg: dict, results: dict[str, Any] | None = None) -> str:
    """The result key of the task's headline metric, read from the task: '<first metric of its metric_list>,<its
    first filter or none>'. A task without a metric_list is scored by lm-eval's defaults for its output type;
    its headline is then the first metric lm-eval reports for it in ``results`` (no table of ours names it)."""
    filters = cfg.get("filter_list") or [{"name": "none"}]
    if cfg.get("metric_list"):
        metric = cfg["metric_list"][0]["metric"]
        name = metric if isinstance(metric, str) else metric.__name__
        return f"{name},{filters[0]['name']}"
    reported = [k for k in (results or {}) if "," in k and "_stderr," not in k]
    if not reported:
        raise ValueError(f"task {cfg.get('task')}: no metric_list, and no metric reported to take the headline from")
    return next((k for k in reported if k.endswith(f",{filters[0]['name']}")), reported[0])


def apply_sampling(cfg: dict, sampling: dict[str, Any] | None) -> dict:
    """A generation task's config with ``evaluation.sampling[task]`` applied: ``samples`` per item (lm-eval's
    ``repeats``), ``temperature`` (0 = greedy) and ``top_p``. Greedy with more than one sample is refused: the
    samples would be copies. Returns ``cfg`` unchanged without an entry."""
    if not sampling:
        return cfg
    task = cfg.get("task")
    if "generation_kwargs" not in cfg:
        raise ValueError(f"evaluation.sampling.{task}: {task} does not generate (it scores log-likelihoods)")
    gen = dict(cfg["generation_kwargs"])
    samples = int(sampling.get("samples", cfg.get("repeats", 1)))
    if "temperature" in sampling:
        gen["temperature"] = float(sampling["temperature"])
        gen["do_sample"] = gen["temperature"] > 0
    if "top_p" in sampling:
        gen["top_p"] = float(sampling["top_p"])
    if not gen.get("do_sample") and samples > 1:
        raise ValueError(f"evaluation.sampling.{task}: {samples} greedy samples would be {samples} copies; "
                         "set temperature > 0 or samples: 1")
    if not gen.get("do_sample"):
        gen.pop("temperature", None), gen.pop("top_p", None)
    return {**cfg, "repeats": samples, "generation_kwargs": gen}


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
    dtype: str = "run",
) -> Any:
    """One lm-eval ``HFLM`` over a model loaded once, for every task of an evaluate job.

    With ``adapters`` ({name: adapter dir}, e.g. one per task and seed) :func:`use_adapter` picks the active
    one. By default the model is a ``PeftModel`` holding each adapter under its name, its LoRA factors in fp32
    whatever the weights' dtype (peft's ``autocast_adapter_dtype``; :func:`adapters_in_fp32`): the branch
    s B (A x) is computed in fp32 and added to the layer's output, where training added it. With ``merge`` and fp32
    weights (:func:`merges_exactly`) the plain model is kept and :func:`use_adapter` evaluates a copy of it with
    the adapter merged into the weights (W + s B A): the same function to fp32's rounding (9e-6 nats) without
    peft's per-module LoRA branch, about twice as fast to generate from on CPU for a toy model, at the cost of
    a second copy of the weights. In bf16 or fp16 weights (a GPU run, or ``dtype`` "auto") ``merge`` is not
    honoured: W + s B A rounded to 8 (11) significant bits drops every delta entry below half a unit in the
    last place of its weight (the toy's adapters in bf16: 95% of LaTen's entries, 1-7% of the trained LoRAs';
    :func:`rounded_away`), so the adapters stay unmerged. (A delta as small as LaTen's is below what bf16
    outputs resolve too: only an fp32 evaluation sees it.) A model whose LM head
    is tied to its input embedding (SmolLM2, Qwen2.5) gets its own copy of the head before any adapter is
    applied (:func:`pkt.models.build.untie_output_head`): the embedding's and the head's LoRA then change
    only their own module, merged or not, and lm-eval's re-tying (``tie_weights``) has nothing to undo.
    Loading once matters: the model and tokenizer load, not the scoring, is most of a toy task's time.
    ``dtype`` is :func:`eval_dtype`'s setting ("run", "auto" = the checkpoint's own, or a torch dtype name).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pkt.models.build import untie_output_head, with_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(with_tokenizer(model_dir))  # a folder without one is named
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=eval_dtype(dtype, device)).to(device)
    if adapters:
        untie_output_head(model)
    if adapters and merge and not merges_exactly(model):
        log.info("evaluation.merge_adapters: not merging into %s weights, which would round the adapters' small "
                 "delta entries away; the adapters stay unmerged, in fp32", model.dtype)
        merge = False
    if adapters and not merge:
        from peft import PeftModel

        (first, path), *rest = adapters.items()
        model = PeftModel.from_pretrained(model, str(path), adapter_name=first, autocast_adapter_dtype=True)
        for name, path in rest:
            model.load_adapter(str(path), adapter_name=name, autocast_adapter_dtype=True)
        adapters_in_fp32(model)
    model.eval()
    lm = continuation_hflm()(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length)
    if adapters and merge:
        lm.pkt_merge = {"base": model, "adapters": {k: Path(v) for k, v in adapters.items()}}
    return lm


def eval_dtype(setting: str, device: str) -> Any:
    """The dtype a model is evaluated in: "run" = the run's (:func:`pkt.models.build.run_dtype`: bf16 on a GPU,
    fp32 on the CPU); "auto" = the checkpoint's own ``torch_dtype``, as Open-Instruct loads (fp16 for Llama-2);
    or a torch dtype by name."""
    import torch

    from pkt.models.build import run_dtype

    if setting == "auto":
        return "auto"
    name = run_dtype(device) if setting == "run" else setting
    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ValueError(f"evaluation.dtype {setting!r} is not run, auto or a torch dtype")
    return getattr(torch, name)


def merges_exactly(model: Any) -> bool:
    """Whether merging an adapter into ``model``'s weights keeps it: only fp32 weights hold W + s B A to fp32's
    rounding; bf16 and fp16 ones drop the delta entries smaller than half a unit in the last place of theirs."""
    import torch

    return all(p.dtype == torch.float32 for p in model.parameters() if p.is_floating_point())


def adapters_in_fp32(model: Any) -> None:
    """Keep a peft model's LoRA factors in fp32 (its LoRA layers then compute their branch in fp32 and add it
    to the bf16 or fp16 output): peft upcasts them on load, and this makes sure of it."""
    import torch

    for name, param in model.named_parameters():
        if "lora_" in name and param.is_floating_point() and param.dtype != torch.float32:
            param.data = param.data.float()


def rounded_away(model: Any, dtype: Any) -> tuple[int, int]:
    """(entries lost, entries changed) of the active adapter(s) of the peft ``model`` when merged into its weights
    and stored in ``dtype``: the nonzero entries of s B A for which W + s B A rounds to what W alone does."""
    import torch

    lost = changed = 0
    for module in model.modules():
        if not hasattr(module, "get_delta_weight") or not hasattr(module, "lora_A"):
            continue
        for name in module.active_adapters:
            if name not in module.lora_A and name not in getattr(module, "lora_embedding_A", {}):
                continue
            with torch.no_grad():
                delta = module.get_delta_weight(name).float()
                weight = module.get_base_layer().weight.float()
                nonzero = delta != 0
                same = (weight + delta).to(dtype) == weight.to(dtype)
            lost += int((same & nonzero).sum())
            changed += int(nonzero.sum())
    return lost, changed


@functools.cache
def continuation_hflm() -> type:
    """lm-eval's ``HFLM`` with a generation's text decoded in context (:class:`ContinuationHFLM`), built on
    first use so that importing this module does not import lm-eval."""
    from lm_eval.models.huggingface import HFLM

    class ContinuationHFLM(HFLM):
        """``HFLM`` whose generated tokens decode as they read after the prompt, as Open-Instruct's do.

        lm-eval decodes a continuation's tokens alone; a sentencepiece tokenizer (Llama's) then drops the
        leading space of the first token, so a HumanEval body generated as "    return x" reads "   return x"
        and fails on its indentation. Open-Instruct decodes prompt + output and cuts the prompt's text off;
        here the tokens are decoded after an anchor token (the newline's) whose text is cut off, which gives
        the same text without the prompt. Byte-level tokenizers (the toy one) decode the same either way.
        """

        def tok_decode(self, tokens, skip_special_tokens: bool = True):
            if isinstance(tokens, int):
                return super().tok_decode(tokens, skip_special_tokens=skip_special_tokens)
            anchor = self.tokenizer.encode("\n", add_special_tokens=False)[-1:]
            head = self.tokenizer.decode(anchor, skip_special_tokens=skip_special_tokens)
            text = self.tokenizer.decode(anchor + list(tokens), skip_special_tokens=skip_special_tokens)
            return text[len(head):] if text.startswith(head) else super().tok_decode(tokens, skip_special_tokens)

    return ContinuationHFLM


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
    sampling: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Evaluate one task with an lm-eval model; return (summary with provenance, per-sample records).

    ``lm`` is an ``HFLM`` from :func:`load_lm`, or a stub whose answers are known (tests). ``protocol``
    renders a paper task's prompt in the Tulu format ("tulu", the published rows) or through the model's own
    chat template ("chat_template", :func:`pkt.evaluation.tasks.protocol_config`); ``max_gen_toks`` caps generation;
    ``sampling`` ({task: {samples, temperature, top_p}}) overrides a generation task's decoding
    (:func:`apply_sampling`).
    The summary holds the headline metric with its stderr, every per-item score (``items``: the paired bootstrap
    of the tables needs them; an item's score is the mean over its samples), the samples per item, the
    reference the protocol follows (a paper task's Open-Instruct commit) and, for tasks whose documents carry
    ``known_by_student``, the accuracy on held-out and control items separately (``subsets``).
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    from pkt.evaluation.tasks import prompt_protocol, protocol_config

    _environment_once()
    # Local data files are checked against their manifest before anything runs (a cut split: refused).
    identities = {split: data_identity(f) for split, f in ((data or {}).get("data_files") or {}).items()}
    cfg, apply_chat_template = protocol_config(task_config(tasks_dir, task, data), protocol)
    cfg = apply_sampling(cfg, (sampling or {}).get(task))
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
    key = primary_metric(cfg, results)
    metric_name, filter_name = key.split(",")
    samples = out["samples"][task]
    items = item_scores([s for s in samples if s.get("filter", "none") == filter_name], metric_name)
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
        "protocol": prompt_protocol(task, protocol, int(cfg.get("metadata", {}).get("shots", 0))),
        "reference": reference_of(cfg),
        "samples_per_item": int(cfg.get("repeats", 1)),
        "generation": {k: v for k, v in cfg.get("generation_kwargs", {}).items() if k != "until"} or None,
        "limit": limit,
        "max_gen_toks": max_gen_toks,
        "seed": seed,
        "wall_s": round(wall, 2),
        "data": identities.get("test"),  # the split scored: {file, sha256, records}; None for a hub dataset
    }
    if summary["data"] is not None:
        check_scored(summary, summary["data"], f"task {task}")
    return summary, samples


def reference_of(cfg: dict) -> dict[str, str] | None:
    """The evaluation code a task's protocol reproduces, from its YAML's ``metadata.open_instruct`` commit."""
    from pkt.evaluation.open_instruct import OPEN_INSTRUCT
    from pkt.evaluation.superni import OPEN_INSTRUCT_SUPERNI

    metadata = cfg.get("metadata", {})
    if metadata.get("open_instruct_superni") is not None:  # eval/superni left Open-Instruct before OPEN_INSTRUCT
        if metadata["open_instruct_superni"] != OPEN_INSTRUCT_SUPERNI["commit"]:
            raise ValueError(f"task {cfg.get('task')}: metadata.open_instruct_superni is not the commit "
                             f"pkt.evaluation.superni reproduces ({OPEN_INSTRUCT_SUPERNI['commit']})")
        return dict(OPEN_INSTRUCT_SUPERNI)
    commit = metadata.get("open_instruct")
    if commit is None:
        return None
    if commit != OPEN_INSTRUCT["commit"]:
        raise ValueError(f"task {cfg.get('task')}: metadata.open_instruct {commit} is not the commit "
                         f"pkt.evaluation.open_instruct reproduces ({OPEN_INSTRUCT['commit']})")
    return dict(OPEN_INSTRUCT)


def task_options(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The :func:`run_task` keywords that the config's ``evaluation`` section sets for every task."""
    return {key: evaluation.get(key) for key in ("limit", "max_gen_toks", "sampling")} | {
        "protocol": evaluation.get("protocol", "tulu")}


def _environment_once() -> None:
    """Collect lm-eval's environment report once per process, not at every ``simple_evaluate`` call.

    lm-eval adds torch's ``collect_env`` report to every result, which runs about a dozen subprocesses
    (~1 s); an evaluate job calls ``simple_evaluate`` once per task and adapter (12 times), and the
    environment does not change in between. The report itself is unchanged.
    """

    from torch.utils import collect_env

    if not hasattr(collect_env.get_pretty_env_info, "cache_info"):
        collect_env.get_pretty_env_info = functools.cache(collect_env.get_pretty_env_info)


GROUPS = {True: "control", False: "held_out"}  # toy_mmlu: did the student's corpus hold the fact?


def item_scores(samples: list[dict[str, Any]], metric: str) -> dict[str, list]:
    """Per-item scores in document order: ``{"id": [...], "score": [...], "group": [...], "cluster": [...]}``.

    ``id`` is the document's own id (its ``doc_id`` position when it has none), so items can be
    paired across models; ``group`` is ``held_out`` / ``control`` for documents that say whether the
    student saw the fact, else None; ``cluster`` is the document's ``cluster`` (toy test records: the
    template or entity that items share, whose scores are correlated, so the tables resample them
    together), else None (paper tasks: every item is its own cluster).
    """
    ordered = sorted(samples, key=lambda s: s["doc_id"])
    known = [s["doc"].get("known_by_student") for s in ordered]
    clusters = [s["doc"].get("cluster") for s in ordered]
    return {
        "id": [str(s["doc"].get("id", s["doc_id"])) for s in ordered],
        "score": [float(s[metric]) for s in ordered],
        "group": [GROUPS.get(k) if isinstance(k, bool) else None for k in known],
        "cluster": [None if c is None else str(c) for c in clusters],
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
