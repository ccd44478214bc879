"""The paper DAG end to end on CPU, with tiny random Llamas standing in for Llama-2-13B/7B-chat.

Everything but the model sizes is the paper run's: config/paper.yaml (rules, task names, protocol), its
hub repo ids resolved by ``snapshot_download`` from a hub cache laid out as the hub's (refs, snapshots,
blobs), the LaTen splits read through their sha256 check and converted, and slices of the real benchmark
files in the hub datasets' schema as test sets. The models are random, so the scores mean nothing; what
is checked is that every stage runs on paper-shaped inputs (a Llama-style tokenizer with a BOS and no pad
token, long real prompts) and that provenance, protocol and the published rows reach the outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, snakemake
from paper_data import humaneval_rows, mmlu_rows
from test_paper_tasks import DATA, write_jsonl

pytestmark = [pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent"), pytest.mark.slow]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LIMIT = 6  # records per train/extract/align split
SIZES = {"llama2_13b_chat": {"hidden_size": 64, "num_layers": 4, "num_heads": 4, "intermediate_size": 128},
         "llama2_7b_chat": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64}}
METHODS = ["lora", "seeking", "semalign", "laten"]  # the rows with published numbers (KD, FitNet: the smoke run)
TEST_ITEMS = {"paper_mmlu": 8, "paper_gsm8k": 3, "paper_humaneval": 3, "paper_mbpp": 3}


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


def tiny_models(cache: Path, scratch: Path) -> int:
    """The teacher and student as random Llamas with a Llama-style tokenizer trained on the paper splits."""
    import torch
    from tiny_llama import llama_like
    from transformers import LlamaConfig, LlamaForCausalLM

    from pkt.data.tokenizer import train_tokenizer

    texts = [m["content"] for path in sorted((DATA / "paper_splits").rglob("*_train_split.jsonl"))
             for line in path.read_text().splitlines()[:200] for m in json.loads(line)["messages"]]
    tok = llama_like(train_tokenizer(texts, vocab_size=1200))
    repos = {"llama2_13b_chat": "meta-llama/Llama-2-13b-chat-hf", "llama2_7b_chat": "meta-llama/Llama-2-7b-chat-hf"}
    for seed, (name, size) in enumerate(SIZES.items()):
        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=size["hidden_size"], num_hidden_layers=size["num_layers"],
                          num_attention_heads=size["num_heads"], num_key_value_heads=size["num_heads"],
                          intermediate_size=size["intermediate_size"], max_position_embeddings=1024,
                          tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        folder = scratch / name
        LlamaForCausalLM(cfg).save_pretrained(folder)
        tok.save_pretrained(folder)
        hub_cache(cache, repos[name], {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
    return len(tok)


def benchmark_slices(folder: Path) -> dict[str, dict]:
    """Slices of the real benchmarks in the hub datasets' schema (evaluation.data)."""
    folder.mkdir()
    gsm = [json.loads(line) for line in (DATA / "gsm8k" / "test.jsonl").read_text().splitlines()]
    mbpp = [json.loads(line) for line in (DATA / "mbpp" / "mbpp.jsonl").read_text().splitlines()]
    rows = {"paper_mmlu": mmlu_rows(DATA, per_subject=1)[:: 57 // TEST_ITEMS["paper_mmlu"]][: TEST_ITEMS["paper_mmlu"]],
            "paper_gsm8k": gsm[: TEST_ITEMS["paper_gsm8k"]],
            "paper_humaneval": humaneval_rows(DATA)[: TEST_ITEMS["paper_humaneval"]],
            "paper_mbpp": [r for r in mbpp if r["task_id"] >= 11][: TEST_ITEMS["paper_mbpp"]]}
    return {task: {"data_files": {"test": str(write_jsonl(folder / f"{task}.jsonl", r))}} for task, r in rows.items()}


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """The paper DAG (tables and figures) on the stand-in models; returns the workflow copy and its env."""
    root = copy_workflow(tmp_path_factory.mktemp("standin"))
    cache = root / "hub"
    vocab = tiny_models(cache, root / "scratch")
    models = {name: {**size, "num_key_value_heads": size["num_heads"], "vocab_size": vocab,
                     "max_position_embeddings": 1024} for name, size in SIZES.items()}
    override = {
        "run_name": "standin", "device": "cpu", "max_length": 512,
        "data": {"paper": {"location": str(DATA / "paper_splits"), "limit": LIMIT}},
        "models": models, "methods": METHODS, "seeds": [0], "seeking": {"k": LIMIT}, "lora": {"r": 8},
        "importance": {"batch_size": 3}, "semalign": {"batch_size": 3},
        "train": {"epochs": 1, "batch_size": 3, "grad_accum": 1, "save_steps": 50, "gradient_checkpointing": False},
        "evaluation": {"batch_size": 8, "max_gen_toks": 24, "data": benchmark_slices(root / "tests")},
        "tables": {"bootstrap": 200},
    }
    (root / "config" / "standin.yaml").write_text(yaml.safe_dump(override))
    os.environ.update(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1")  # the stand-in hub; nothing is downloaded
    try:
        snakemake(root, "tables", "figures", "--configfile", "config/paper.yaml", "config/standin.yaml")
    finally:
        for key in ("HF_HUB_CACHE", "HF_HUB_OFFLINE"):
            os.environ.pop(key, None)
    return root / "results" / "standin"


def test_the_paper_splits_are_checked_and_converted(standin):
    for task, folder in {"paper_mmlu": "mmlu/mmlu", "paper_gsm8k": "gsm/gsm", "paper_humaneval": "humaneval/humaneval",
                         "paper_mbpp": "mbpp/mbpp"}.items():
        for split in ("train", "extract", "align"):
            ours = [json.loads(line) for line in (standin / "data" / task / f"{split}.jsonl").read_text().splitlines()]
            theirs = [json.loads(line) for line in
                      (DATA / "paper_splits" / f"{folder}_{split}_split.jsonl").read_text().splitlines()[:LIMIT]]
            assert [r["messages"] for r in ours] == [r["messages"] for r in theirs]
            assert {r["task"] for r in ours} == {task} and len({r["id"] for r in ours}) == LIMIT


def test_hub_models_are_snapshotted_with_their_commit_and_identity(standin):
    for name in SIZES:
        prov = json.loads((standin / "models" / name / "provenance.json").read_text())
        assert prov["commit"] == COMMIT and prov["revision"] == "main" and prov["repo_id"].startswith("meta-llama/")
        safetensors = prov["files"]["model.safetensors"]["sha256"]
        assert safetensors == hashlib.sha256((standin / "models" / name / "model.safetensors").read_bytes()).hexdigest()


def test_every_task_is_evaluated_with_the_papers_protocol_and_names_its_model(standin):
    results = sorted((standin / "eval").rglob("seed*.json"))
    assert len(results) == 4 * 2 + 4 * len(METHODS)  # vanilla teacher and student, each method, four tasks
    for path in results:
        r = json.loads(path.read_text())
        assert r["protocol"] == "tulu" and r["n"] == TEST_ITEMS[r["task"]]
        assert set(r["items"]["score"]) <= {0.0, 1.0}
        prov = json.loads((standin / "models" / r["model"]["name"] / "provenance.json").read_text())
        assert r["model"]["identity"] == prov["identity"] and r["model"]["commit"] == COMMIT
    mmlu = [json.loads(line) for line in
            (standin / "eval" / "lora" / "llama2" / "paper_mmlu" / "seed0.samples.jsonl").read_text().splitlines()]
    context = mmlu[0]["arguments"][0][0]  # (context, continuation) of the first choice
    assert context.startswith("<|user|>\nThe following are multiple choice questions") and context.endswith(
        "\n<|assistant|>\nThe answer is:")


def test_the_tables_put_the_published_rows_beside_the_reproduced_ones(standin):
    main = (standin / "tables" / "main.md").read_text()
    assert "SemAlign, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)" in main
    assert "50.30" in main  # SemAlign's published MMLU
    assert (standin / "tables" / "code_teachers.md").is_file()
