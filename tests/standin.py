"""Stand-ins for the shipped hub configs: the config's own DAG on tiny random models of the same families.

:func:`standin_override` derives a stand-in from a shipped config, so that a new config gets one for free. Each hub
model becomes a random model of its ``architecture`` (Llama or Qwen2, with Qwen2's q/k/v biases) with its flags
kept: tied embeddings, grouped-query attention (the query/key-value group size), the depth ratio between models
(layers divided by their common divisor), the width ratios (hidden and MLP sizes over 32, heads of at least 16
dimensions), and the vocabulary differences between models that share a tokenizer (WizardCoder's extra ``[PAD]``).
Its tokenizer is a BPE trained on the papers' splits, Llama-style (a BOS, no pad token) for Llama models and
Qwen-style (no BOS, a pad token) for Qwen2 ones. The models are served by ``snapshot_download`` from a hub cache
laid out as the hub's (refs, snapshots, blobs named by sha256). The data are the real LaTen splits through their
sha256 and record-count checks, with no ``seeking.k`` override: every extract split is read whole (20 / 20 / 20 / 32
rows), train and align splits to their first 40 rows (``data.paper.limit``; test_paper_config converts every row of
every split). The test sets are slices of the real benchmarks in the hub datasets' schema. Only what sizes CI time
is cut: split rows, one optimizer step of two micro-batches of two per adapter, one seed, a few test items.
config/seeking.yaml reads its training sets from its reference repository, which CI cannot reach: its stand-in
(tests/seeking_standin.py) writes local files in their schema and its evaluations' test files, keeps its whole
task-transfer grid, and its DAG runs ``seeking_tables`` too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from conftest import REPO
from paper_data import humaneval_rows, mmlu_rows
from seeking_standin import TEST_ITEMS as SEEKING_ITEMS
from seeking_standin import seeking_override
from snakemake.utils import update_config

from pkt.io import write_jsonl

DATA = REPO.parent / "shared" / "data"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TEST_ITEMS = {"paper_mmlu": 4, "paper_gsm8k": 2, "paper_humaneval": 2, "paper_mbpp": 2, **SEEKING_ITEMS}
LIMIT = 40  # rows read of each split: every extract split whole (20 / 20 / 20 / 32), train and align cut
MODEL_TYPES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
OVERLAYS = sorted(p.name for p in (REPO / "config").glob("*.yaml") if p.name != "config.yaml")
# Overlays meant to go over another overlay (quick-check.yaml goes over a user's own: tested over smollm2.yaml).
BASES = {"paper-code.yaml": ["paper.yaml"], "quick-check.yaml": ["smollm2.yaml"],
         "seeking-llama1.yaml": ["seeking.yaml"]}
# Overlays whose stand-in would be another's: quick-check.yaml shrinks the run under it; seeking-llama1.yaml runs
# seeking.yaml's DAG on other checkpoints of the same family (its plan is tested in tests/test_resources.py).
NO_STANDIN = {"quick-check.yaml", "seeking-llama1.yaml"}


def configfiles(overlay: str) -> list[str]:
    """The ``--configfile`` arguments of a shipped overlay (with the overlay it goes over)."""
    return [f"config/{name}" for name in [*BASES.get(overlay, []), overlay]] if overlay else []


def shipped(overlay: str) -> dict[str, Any]:
    """A shipped config as Snakemake sees it: config/config.yaml with the overlay(s) merged over it."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for path in configfiles(overlay):
        update_config(config, yaml.safe_load((REPO / path).read_text()))
    return config


def hub_overlays() -> list[str]:
    """Every shipped overlay that runs hub models on the papers' data: each gets a stand-in."""
    # quick-check.yaml only shrinks the run of the overlay under it, as a stand-in does: no stand-in of its own.
    return [o for o in OVERLAYS if shipped(o)["data"]["source"] == "paper" and o not in NO_STANDIN]


def active_models(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: m for name, m in config["models"].items() if "hub" in m}


def shrunk(models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Tiny sizes with each model's flags and the ratios between models kept (module docstring)."""
    layers = {name: m["num_layers"] for name, m in models.items()}
    step = math.gcd(*layers.values())
    if max(layers.values()) // step > 12:  # no small common divisor: keep the ratio approximately
        step = max(layers.values()) / 8
    base_vocab: dict[str, int] = {}
    for m in models.values():
        base_vocab[m["tokenizer"]] = min(base_vocab.get(m["tokenizer"], m["vocab_size"]), m["vocab_size"])
    sizes = {}
    for name, m in models.items():
        kv = m.get("num_key_value_heads", m["num_heads"])
        group = m["num_heads"] // kv
        kv_small = 1 if group > 1 else 2
        heads = kv_small * group
        # an even head size of at least 16, so a GQA key/value projection still holds a rank-16 LoRA block
        hidden = max(16 * heads, math.ceil(m["hidden_size"] / 32 / (2 * heads)) * 2 * heads)
        sizes[name] = {"hidden_size": hidden, "num_layers": max(2, round(m["num_layers"] / step)),
                       "num_heads": heads, "num_key_value_heads": kv_small,
                       "intermediate_size": max(8, 2 * math.ceil(m["intermediate_size"] / 64)),
                       "extra_tokens": m["vocab_size"] - base_vocab[m["tokenizer"]]}
    return sizes


def hub_cache(root: Path, repo_id: str, files: dict[str, bytes]) -> None:
    """Files as the hub cache stores a snapshot: blobs named by hash, snapshot links, refs/main -> commit."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "blobs").mkdir()
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()  # LFS objects are stored under their sha256
        blob.write_bytes(data)
        (snap / name).symlink_to(os.path.relpath(blob, snap))


@cache
def tokenizer_for(architecture: str, extra_tokens: int):
    """A BPE trained on the papers' train splits, in the model family's style, with any extra tokens (trained
    once per style in a process: a config's teacher and student share it, as they share a real tokenizer)."""
    from tiny_llama import llama_like

    from pkt.data.tokenizer import train_tokenizer
    from pkt.io import read_jsonl

    texts = [m["content"] for path in sorted((DATA / "paper_splits").rglob("*_train_split.jsonl"))
             for record in read_jsonl(path)[:200] for m in record["messages"]]
    tok = train_tokenizer(texts, vocab_size=1200)
    if architecture == "LlamaForCausalLM":
        tok = llama_like(tok)
    if extra_tokens:  # WizardCoder: Llama-2's tokens plus a [PAD]
        tok.add_special_tokens({"pad_token": "[PAD]"})
        tok.add_tokens([f"[EXTRA{i}]" for i in range(1, extra_tokens)])
    return tok


def build_models(config: dict[str, Any], cache: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    """Random models of the config's hub models, saved into the hub cache; their ``models`` entries."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    models = active_models(config)
    entries = {}
    for seed, (name, size) in enumerate(shrunk(models).items()):
        m = models[name]
        tok = tokenizer_for(m["architecture"], size["extra_tokens"])
        cfg = AutoConfig.for_model(
            MODEL_TYPES[m["architecture"]], vocab_size=len(tok), hidden_size=size["hidden_size"],
            num_hidden_layers=size["num_layers"], num_attention_heads=size["num_heads"],
            num_key_value_heads=size["num_key_value_heads"], intermediate_size=size["intermediate_size"],
            max_position_embeddings=m["max_position_embeddings"],
            tie_word_embeddings=m.get("tie_word_embeddings", False),
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        torch.manual_seed(seed)
        folder = scratch / name
        AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
        tok.save_pretrained(folder)
        hub_cache(cache, m["hub"]["repo_id"], {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
        entries[name] = {key: size[key] for key in ("hidden_size", "num_layers", "num_heads", "num_key_value_heads",
                                                    "intermediate_size")} | {"vocab_size": len(tok)}
    return entries


def benchmark_slices(folder: Path, tasks: list[str]) -> dict[str, dict]:
    """Slices of the real benchmarks in the hub datasets' schema (evaluation.data)."""
    folder.mkdir(exist_ok=True)
    mmlu = mmlu_rows(DATA, per_subject=1)
    gsm = [json.loads(line) for line in (DATA / "gsm8k" / "test.jsonl").read_text().splitlines()]
    mbpp = [json.loads(line) for line in (DATA / "mbpp" / "mbpp.jsonl").read_text().splitlines()]
    rows = {"paper_mmlu": mmlu[:: len(mmlu) // TEST_ITEMS["paper_mmlu"]][: TEST_ITEMS["paper_mmlu"]],
            "paper_gsm8k": gsm[: TEST_ITEMS["paper_gsm8k"]],
            "paper_humaneval": humaneval_rows(DATA)[: TEST_ITEMS["paper_humaneval"]],
            "paper_mbpp": [r for r in mbpp if r["task_id"] >= 11][: TEST_ITEMS["paper_mbpp"]]}
    tasks = [task for task in tasks if task in rows]  # Seeking's tasks: seeking_standin.benchmark_files
    for task in tasks:
        write_jsonl(folder / f"{task}.jsonl", rows[task])
    return {task: {"data_files": {"test": str(folder / f"{task}.jsonl")}} for task in tasks}


def is_seeking(config: dict[str, Any]) -> bool:
    """Seeking's own experiment (config/seeking.yaml): its tasks, its reference files, its tables."""
    return any(task.startswith("seeking_") for task in config["evaluation"]["tasks"])


def standin_override(overlay: str, root: Path) -> dict[str, Any]:
    """The stand-in's config, merged over the shipped one: its tiny models (built into ``root/hub``), the CPU,
    the local splits and test slices, and short training; every other key is the shipped config's."""
    config = shipped(overlay)
    models = build_models(config, root / "hub", root / "scratch")
    tasks = config["evaluation"]["tasks"]
    override = {
        "run_name": f"standin_{config['run_name']}", "device": "cpu", "seeds": [0],
        "data": {"paper": {"location": str(DATA / "paper_splits"), "limit": LIMIT}},
        "models": models,
        "train": {"max_steps": 1, "batch_size": 2, "grad_accum": 2, "save_steps": 50},
        "evaluation": {"batch_size": 4, "max_gen_toks": 16, "data": benchmark_slices(root / "tests", tasks),
                       # still sampled (repeats, pass@k), 2 samples instead of the protocol's 20: CI time
                       "sampling": {t: {"samples": 2} for t in tasks if t == "paper_humaneval"}},
        "tables": {"bootstrap": 100},
    }
    if is_seeking(config):  # its training files in the reference's schema and its test files
        update_config(override, seeking_override(config, root, DATA))
    return override


def run_standin(overlay: str, root: Path, snakemake, extra: dict[str, Any] | None = None, check: bool = True):
    """The shipped config's DAG (``tables figures``, and ``seeking_tables`` for Seeking's) on its stand-in in the
    workflow copy ``root``, with ``extra`` merged over the stand-in's config (the GPU check: ``device: cuda``); (its
    results folder, the finished Snakemake process)."""
    override = standin_override(overlay, root)
    update_config(override, extra or {})
    (root / "config" / "standin.yaml").write_text(yaml.safe_dump(override))
    os.environ.update(HF_HUB_CACHE=str(root / "hub"), HF_HUB_OFFLINE="1")  # the stand-in hub: no download
    try:
        targets = ["tables", "figures", *(["seeking_tables"] if is_seeking(shipped(overlay)) else [])]
        proc = snakemake(root, *targets, "--configfile", *configfiles(overlay), "config/standin.yaml", check=check)
    finally:
        for key in ("HF_HUB_CACHE", "HF_HUB_OFFLINE"):
            os.environ.pop(key, None)
    return root / "results" / override["run_name"], proc
