"""Pretrained models from the Hugging Face hub: snapshot once, record what was used, identify it cheaply.

``prepare_model`` calls :func:`prepare_hub_model` for a ``models.<name>`` section with a ``hub`` key. The
snapshot goes through ``huggingface_hub.snapshot_download`` with the user's own settings (token, cache,
``HF_HUB_OFFLINE``), so a paper run downloads the 13B weights once into the hub cache; the model folder
under ``results/<run>/models/<name>`` links to the snapshot's files instead of copying 26 GB.

Identity: every later job names the model by ``provenance.json``'s ``identity``, computed here once. For a
file in the hub cache it is free: an LFS blob is stored under its own sha256. Small files (configs,
tokenizers) and the files of a ``local_dir`` are hashed. Evaluating a 13B model no longer hashes it per job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from pkt.io import atomic_dir, sha256_file, write_json

log = logging.getLogger(__name__)

# Weights as safetensors only (hub repos often carry the same weights again as .bin / consolidated .pth).
PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.txt", "*.jinja", "*.py"]
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# models.<name> keys and the config.json keys that must agree (the config's sizes plan resources and checks).
CHECKED = {"hidden_size": "hidden_size", "num_layers": "num_hidden_layers", "num_heads": "num_attention_heads",
           "num_key_value_heads": "num_key_value_heads", "intermediate_size": "intermediate_size",
           "vocab_size": "vocab_size", "max_position_embeddings": "max_position_embeddings",
           "tie_word_embeddings": "tie_word_embeddings"}


def snapshot(repo_id: str | None, revision: str,
             local_dir: str | os.PathLike[str] | None = None) -> tuple[Path, str | None]:
    """(folder holding the model's files, resolved commit or None for a local folder)."""
    if local_dir is not None:
        folder = Path(local_dir)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"hub.local_dir {folder}: no config.json (not a model in the hub's layout)")
        return folder, None
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=PATTERNS))
    return folder, folder.name  # the cache layout: .../snapshots/<commit>


def file_sha256(path: Path) -> str:
    """sha256 of a snapshot file: the blob's own name in the hub cache (LFS objects), else hashed."""
    target = path.resolve()
    if path.is_symlink() and target.parent.name == "blobs" and SHA256.match(target.name):
        return target.name
    return sha256_file(target)


def model_files(folder: Path) -> dict[str, dict[str, Any]]:
    """{relative path: {sha256, bytes}} of every file of a model folder (hidden files skipped)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files[str(rel)] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    return files


def identity(files: dict[str, dict[str, Any]]) -> str:
    """One sha256 naming the exact model: over each file's path and content hash."""
    lines = "".join(f"{name} {meta['sha256']}\n" for name, meta in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def check_sizes(name: str, arch: dict[str, Any], config_json: dict[str, Any]) -> None:
    """The sizes in models.<name> must be the snapshot's: they planned the jobs' resources."""
    wrong = []
    for key, hf_key in CHECKED.items():
        if key not in arch:
            continue
        fallback = config_json.get("num_attention_heads") if key == "num_key_value_heads" else None  # MHA configs
        actual = config_json.get(hf_key, fallback)
        if actual is not None and actual != arch[key]:
            wrong.append(f"models.{name}.{key} is {arch[key]} but the snapshot's config.json has {hf_key} = {actual}")
    declared, actual = arch.get("architecture"), (config_json.get("architectures") or [None])[0]
    if declared is not None and actual is not None and declared != actual:
        wrong.append(f"models.{name}.architecture is {declared} but the snapshot's config.json has {actual}")
    if wrong:
        raise ValueError("; ".join(wrong))


def prepare_hub_model(name: str, arch: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Snapshot ``models.<name>.hub`` and write ``out_dir``: links to its files and ``provenance.json``."""
    hub = arch["hub"]
    folder, commit = snapshot(hub.get("repo_id"), hub.get("revision", "main"), hub.get("local_dir"))  # local_dir: no id
    check_sizes(name, arch, json.loads((folder / "config.json").read_text()))
    files = model_files(folder)
    provenance = {"name": name, "repo_id": hub.get("repo_id"), "revision": hub.get("revision"), "commit": commit,
                  "source": str(folder) if commit is None else "hub", "files": files, "identity": identity(files)}
    with atomic_dir(out_dir) as tmp:
        for rel in files:
            link = Path(tmp) / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((folder / rel).resolve())
        write_json(Path(tmp) / "provenance.json", provenance)
    log.info("%s: %s @ %s (commit %s), %d files, identity %s", name, hub.get("repo_id"), hub.get("revision"), commit,
             len(files), provenance["identity"][:16])
    return provenance


def model_identity(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What a result names its model by: provenance.json's identity (and hub repo/commit), written once at
    prepare time; a folder without one (an old toy model) is hashed here."""
    path = Path(model_dir) / "provenance.json"
    if path.is_file():
        p = json.loads(path.read_text())
        return {**{key: p.get(key) for key in ("identity", "repo_id", "revision", "commit")},
                **({"cpu": p["cpu"]} if p.get("cpu") else {})}  # a toy model: the CPU path it was pretrained on
    return {"identity": identity(model_files(Path(model_dir)))}
