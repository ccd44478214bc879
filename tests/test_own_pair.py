"""A researcher's own pair from two hub ids: sizes read from each model's config.json at plan time.

The stand-ins are SmolLM2-1.7B-Instruct and SmolLM2-360M-Instruct as the hub publishes them, reduced to what
planning reads (``config.json``, ``tokenizer.json``) in ``hub.local_dir`` folders: the plan must come out with
their real sizes (the 360M's 15 heads and 5 key/value heads, tied embeddings, 8,192 positions), none of the toy
world's defaults, and the jobs sized from them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, snakemake

from pkt.models.hub_config import HubConfigError, resolve_models
from pkt.resources import job_resources, parameter_count

SMOLLM2 = {  # the hub's config.json values (HuggingFaceTB/SmolLM2-*-Instruct)
    "teacher": {"hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": 32,
                "intermediate_size": 8192},
    "student": {"hidden_size": 960, "num_hidden_layers": 32, "num_attention_heads": 15, "num_key_value_heads": 5,
                "intermediate_size": 2560},
}
COMMON = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 49152,
          "max_position_embeddings": 8192, "tie_word_embeddings": True}
REPOS = {"teacher": "HuggingFaceTB/SmolLM2-1.7B-Instruct", "student": "HuggingFaceTB/SmolLM2-360M-Instruct"}


def standin(folder: Path, role: str, vocab: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**COMMON, **SMOLLM2[role]}))
    model = {"type": "BPE", "vocab": vocab or {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": model}))
    return folder


@pytest.fixture
def dirs(tmp_path) -> dict[str, Path]:
    return {role: standin(tmp_path / "hub" / role, role) for role in SMOLLM2}


def hub_only(dirs: dict[str, Path]) -> dict[str, dict]:
    return {f"smol_{role}": {"hub": {"repo_id": REPOS[role], "local_dir": str(d)}} for role, d in dirs.items()}


def test_sizes_and_tokenizer_come_from_config_json(dirs):
    models = resolve_models(hub_only(dirs))
    student = models["smol_student"]
    assert {k: student[k] for k in ("hidden_size", "num_layers", "num_heads", "num_key_value_heads",
                                     "intermediate_size", "vocab_size", "max_position_embeddings",
                                     "tie_word_embeddings", "architecture")} == {
        "hidden_size": 960, "num_layers": 32, "num_heads": 15, "num_key_value_heads": 5, "intermediate_size": 2560,
        "vocab_size": 49152, "max_position_embeddings": 8192, "tie_word_embeddings": True,
        "architecture": "LlamaForCausalLM"}
    assert models["smol_teacher"]["num_layers"] == 24
    assert models["smol_teacher"]["tokenizer"] == student["tokenizer"]  # one tokenizer.json vocabulary: one name
    assert "corpus" not in student and "pretrain" not in student  # nothing of the toy world


def test_a_different_vocabulary_gets_another_tokenizer_name(tmp_path, dirs):
    other = standin(tmp_path / "other", "student", vocab={"x": 0, "y": 1})
    models = resolve_models({"a": {"hub": {"local_dir": str(dirs["student"])}},
                             "b": {"hub": {"local_dir": str(other)}}})
    assert models["a"]["tokenizer"] != models["b"]["tokenizer"]


def test_typed_sizes_are_checked_against_config_json_one_line_each(dirs):
    models = hub_only(dirs)
    models["smol_student"].update(num_heads=16, num_key_value_heads=15)
    with pytest.raises(HubConfigError) as error:
        resolve_models(models)
    lines = str(error.value).splitlines()
    assert lines[0] == "invalid config (2 problems):"
    assert lines[1].strip().startswith("models.smol_student.num_heads: 16, but the config.json of hub.local_dir")
    assert lines[2].strip().startswith("models.smol_student.num_key_value_heads: 15, but")


def test_no_config_json_and_no_sizes_is_refused_naming_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(HubConfigError, match=r"models\.mine: hidden_size, .* not given, and the config\.json of "
                                             r"someone/model@main cannot be read"):
        resolve_models({"mine": {"hub": {"repo_id": "someone/model", "revision": "main"}}})


def test_toy_defaults_reach_toy_models_only(dirs):
    toy = {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128, "corpus": "student",
           "pretrain": {}}
    models = resolve_models({"toy": toy, **hub_only(dirs)})
    assert models["toy"]["max_position_embeddings"] == 512 and models["toy"]["tie_word_embeddings"] is False
    assert models["smol_student"]["max_position_embeddings"] == 8192


def overlay(dirs: dict[str, Path], **over) -> dict:
    return {"run_name": "smollm2-mine", "data": {"source": "paper"}, "models": hub_only(dirs),
            "pairs": {"mine": {"teacher": "smol_teacher", "student": "smol_student"}},
            "methods": ["lora", "kd"], "seeds": [0],
            "evaluation": {"tasks": ["paper_mmlu", "paper_gsm8k", "paper_humaneval", "paper_mbpp"]}, **over}


@pytest.mark.slow
def test_a_pair_from_two_hub_ids_plans_with_its_real_sizes(tmp_path, dirs):
    root = copy_workflow(tmp_path)
    (root / "mine.yaml").write_text(yaml.safe_dump(overlay(dirs)))
    out = snakemake(root, "-n", "--configfile", "config/config.yaml", "mine.yaml").stdout
    student = resolve_models(hub_only(dirs))["smol_student"]
    asks = job_resources("train", [parameter_count(student, 1500)], units=4, gpu=False)
    train = [line for line in out.splitlines() if "Training kd for mine" in line]
    assert train and f"mem_mb={asks['mem_mb']}" in train[0], train
    assert re.search(r"Preparing smol_student", out) and "prepare_tokenizer" not in out


@pytest.mark.slow
def test_a_hub_pair_without_its_own_run_name_is_refused(tmp_path, dirs):
    root = copy_workflow(tmp_path)
    (root / "mine.yaml").write_text(yaml.safe_dump({k: v for k, v in overlay(dirs).items() if k != "run_name"}))
    proc = snakemake(root, "-n", "--configfile", "config/config.yaml", "mine.yaml", check=False)
    assert proc.returncode != 0
    assert "run_name: required for this run (hub models smol_student, smol_teacher)" in proc.stdout


def test_a_local_dir_without_a_model_is_named(tmp_path):
    with pytest.raises(HubConfigError, match=r"models\.mine\.hub\.local_dir: .*nowhere has no config\.json"):
        resolve_models({"mine": {"hub": {"local_dir": str(tmp_path / "nowhere")}}})
