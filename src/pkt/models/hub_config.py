"""A hub model's sizes at plan time, from its own ``config.json``: a new pair from two hub ids.

The DAG sizes every job (memory, time, GPUs) and checks every pair before any job runs, so it needs each
model's sizes when the Snakefile is parsed. A researcher should not have to type them: :func:`resolve_models`
reads each hub model's ``config.json`` from ``hub.local_dir``, the hub cache, or (only when sizes are missing, so
that a config with typed sizes plans offline) a download of that one small file, fills in what was not typed and
refuses, one line per key, a typed size that differs from the file. A toy model gets its toy defaults here
(512 positions, untied), and only a toy model does: nothing of the toy world reaches a hub model.

A hub model's ``tokenizer`` name (a pair must share one vocabulary) defaults to a digest of its tokenizer's
vocabulary and merges, read the same way, so two models with one tokenizer match without a name typed.
Free of torch and Snakemake (``common.smk`` imports it at parse time).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pkt.models.hub import CHECKED

TOY_DEFAULTS = {"tokenizer": "toy", "max_position_embeddings": 512, "tie_word_embeddings": False}
SIZES = (*CHECKED, "architecture")  # models.<name> keys a hub model's config.json answers


class HubConfigError(ValueError):
    """A hub model whose sizes cannot be read, or whose typed sizes differ from its config.json."""


def hub_file(hub: dict[str, Any], name: str, download: bool) -> Path | None:
    """``name`` of a hub model: from ``local_dir``, else the hub cache, else (``download``) the hub; None if
    unavailable (offline, not cached)."""
    if hub.get("local_dir"):
        path = Path(hub["local_dir"]) / name
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(hub["repo_id"], name, revision=hub.get("revision") or "main")
    if isinstance(cached, str):
        return Path(cached)
    if not download or os.environ.get("HF_HUB_OFFLINE") == "1":
        return None
    try:
        return Path(hf_hub_download(hub["repo_id"], name, revision=hub.get("revision") or "main"))
    except Exception:  # noqa: BLE001 - offline, gated, missing: reported by the caller with the model's key
        return None


def sizes_of(config_json: dict[str, Any]) -> dict[str, Any]:
    """models.<name> keys from a transformers ``config.json`` (GQA absent: as many key/value heads as heads)."""
    sizes = {key: config_json[hf] for key, hf in CHECKED.items() if hf in config_json}
    sizes.setdefault("num_key_value_heads", config_json.get("num_attention_heads"))
    sizes.setdefault("tie_word_embeddings", False)  # LlamaConfig's and Qwen2Config's default
    if config_json.get("architectures"):
        sizes["architecture"] = config_json["architectures"][0]
    return {k: v for k, v in sizes.items() if v is not None}


def tokenizer_name(tokenizer_json: Path) -> str:
    """A name for a tokenizer that two models share exactly when their vocabularies and merges are equal."""
    model = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("model", {})
    digest = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:12]
    return f"{model.get('type', 'tokenizer').lower()}-{digest}"


def where(hub: dict[str, Any]) -> str:
    """How a message names a hub model: its local folder, or repo@revision."""
    if hub.get("local_dir"):
        return f"hub.local_dir {hub['local_dir']}"
    return f"{hub.get('repo_id')}@{hub.get('revision') or 'main'}"


def resolve_hub_model(name: str, model: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the model with its sizes and tokenizer filled in from the hub, one message per problem)."""
    hub, key = model["hub"], f"models.{name}"
    missing = [k for k in SIZES if k not in model]
    path = hub_file(hub, "config.json", download=bool(missing))
    if path is None:
        if missing and hub.get("local_dir"):
            return model, [f"{key}.hub.local_dir: {hub['local_dir']} has no config.json (a model folder in the hub's "
                           f"layout), so {', '.join(missing)} cannot be read from it"]
        if missing:
            return model, [f"{key}: {', '.join(missing)} not given, and the config.json of {where(hub)} cannot be "
                           "read (not in the hub cache, offline?): give hub.local_dir, or type them"]
        return model, []  # typed sizes, no copy at hand: checked when prepare_model snapshots it
    found = sizes_of(json.loads(path.read_text()))
    errors = [f"{key}.{k}: {model[k]!r}, but the config.json of {where(hub)} has {found[k]!r} (remove the key to "
              "take the file's)" for k in SIZES if k in model and k in found and model[k] != found[k]]
    resolved = {**found, **model}
    errors += [f"{key}: the config.json of {where(hub)} has no {k}; type it" for k in SIZES if k not in resolved]
    if "tokenizer" not in model:
        tokenizer = hub_file(hub, "tokenizer.json", download=True)
        if tokenizer is None:
            errors.append(f"{key}.tokenizer: not given, and {where(hub)} has no tokenizer.json to name it by; name "
                          "it (a pair's teacher and student must name the same one)")
        else:
            resolved["tokenizer"] = tokenizer_name(tokenizer)
    return resolved, errors


def resolve_models(models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every model with its sizes complete: a toy model with its toy defaults, a hub model from its config.json.
    Raises one :class:`HubConfigError` listing every problem (each ``key.path: problem``)."""
    resolved, errors = {}, []
    for name, model in models.items():
        if "hub" in model:
            resolved[name], problems = resolve_hub_model(name, model)
            errors += problems
        else:
            resolved[name] = {**TOY_DEFAULTS, **model}
    if errors:
        raise HubConfigError(f"invalid config ({len(errors)} problem{'s' * (len(errors) > 1)}):\n  "
                             + "\n  ".join(errors))
    return resolved
