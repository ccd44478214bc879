"""Paper-scale configuration pieces with known answers: the splits' checksum and conversion, hub snapshots'
identity and size check, hub/toy model rules, per-method train overrides and the evaluation protocol."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from pkt.config_checks import ConfigError, active, config_errors
from pkt.config_settings import method_settings, train_settings
from pkt.data.paper import ChecksumError, convert, load_paper_splits, read_checked
from pkt.evaluation.open_instruct import mbpp_signature
from pkt.evaluation.tasks import protocol_config, tulu_prompt
from pkt.models.hub import check_sizes, identity, model_files, model_identity, prepare_hub_model

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


def line(user: str, assistant: str, **fields) -> str:
    return json.dumps({**fields, "messages": [{"role": "user", "content": user},
                                              {"role": "assistant", "content": assistant}]}) + "\n"


def test_a_split_whose_bytes_differ_from_the_pinned_sum_is_named(tmp_path):
    raw = line("Q?", "A.").encode()
    (tmp_path / "gsm").mkdir()
    (tmp_path / "gsm" / "train.jsonl").write_bytes(raw)
    assert read_checked(str(tmp_path), "gsm/train.jsonl", hashlib.sha256(raw).hexdigest()) == raw
    with pytest.raises(ChecksumError, match=r"gsm/train.jsonl has sha256 [0-9a-f]{64}, the config pins 0{64}"):
        read_checked(str(tmp_path), "gsm/train.jsonl", "0" * 64)
    with pytest.raises(FileNotFoundError, match="gsm/missing.jsonl does not exist"):
        read_checked(str(tmp_path), "gsm/missing.jsonl", "0" * 64)


def test_conversion_keeps_the_exchange_and_the_papers_ids():
    raw = (line("Q1", "A1", id="gsm_1", dataset="gsm") + line("Q2", "A2", category="law") + line("Q3", "A3")).encode()
    records = convert(raw, "paper_gsm8k", "gsm.jsonl", limit=2)
    assert [r["messages"][0]["content"] for r in records] == ["Q1", "Q2"]
    assert records[0]["task"] == "paper_gsm8k" and records[0]["source_id"] == "gsm_1"
    assert records[1]["category"] == "law"
    bad = json.dumps({"messages": [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}]}).encode()
    with pytest.raises(ValueError, match=r"gsm.jsonl line 1: expected messages \[user, assistant\]"):
        convert(bad, "paper_gsm8k", "gsm.jsonl")


def test_every_split_is_checked_before_any_is_converted(tmp_path):
    good, other = line("Q", "A").encode(), line("R", "B").encode()
    for name, data in (("train.jsonl", good), ("extract.jsonl", good), ("align.jsonl", other)):
        (tmp_path / name).write_bytes(data)
    sums = {"train": good, "extract": good, "align": good}  # align's pinned sum is wrong
    files = {"paper_gsm8k": {split: {"path": f"{split}.jsonl", "sha256": hashlib.sha256(data).hexdigest()}
                             for split, data in sums.items()}}
    with pytest.raises(ChecksumError, match="align.jsonl"):
        load_paper_splits({"location": str(tmp_path), "files": files}, ["paper_gsm8k"])


def test_the_shipped_config_pins_the_real_splits():
    data = REPO.parent / "shared" / "data" / "paper_splits"
    if not data.is_dir():
        pytest.skip("../shared/data is absent")
    paper = {**CONFIG["data"]["paper"], "location": str(data), "limit": None}
    splits = load_paper_splits(paper, list(paper["files"]))  # every row of every split, at its real size
    assert {t: {s: len(r) for s, r in by.items()} for t, by in splits.items()} == {
        task: {s: f["records"] for s, f in by.items()} for task, by in paper["files"].items()}
    assert {t: by["extract"]["records"] for t, by in paper["files"].items()} == {
        "paper_mmlu": 20, "paper_gsm8k": 20, "paper_humaneval": 20, "paper_mbpp": 32}
    nutrition = next(r for r in splits["paper_mmlu"]["align"] if "\x85" in r["messages"][0]["content"]
                     + r["messages"][1]["content"])
    assert nutrition["source_id"] == "nutrition_7"  # a U+0085 inside a JSON string, kept in one record


def hub_folder(tmp_path: Path, **config) -> Path:
    folder = tmp_path / "snapshot"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"hidden_size": 64, "num_hidden_layers": 2,
                                                    "num_attention_heads": 4, "vocab_size": 100, **config}))
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def test_a_local_hub_folder_is_linked_and_identified_once(tmp_path):
    folder = hub_folder(tmp_path)
    arch = {"hub": {"repo_id": "org/model", "revision": "main", "local_dir": str(folder)}, "hidden_size": 64,
            "num_layers": 2, "num_heads": 4, "num_key_value_heads": 4, "vocab_size": 100}
    prov = prepare_hub_model("m", arch, tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").resolve() == (folder / "model.safetensors").resolve()
    assert prov["files"]["model.safetensors"]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert model_identity(tmp_path / "out")["identity"] == prov["identity"] == identity(model_files(folder))
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert identity(model_files(folder)) != prov["identity"]


def test_sizes_that_differ_from_the_snapshot_are_named():
    check_sizes("t", {"hidden_size": 64, "num_heads": 4, "num_key_value_heads": 4}, {"hidden_size": 64,
                                                                                   "num_attention_heads": 4})
    with pytest.raises(ValueError, match="models.t.num_layers is 3 but the snapshot's config.json has "
                                         "num_hidden_layers = 2"):
        check_sizes("t", {"num_layers": 3}, {"num_hidden_layers": 2})


def paper_config() -> dict:
    from snakemake.utils import update_config

    config = json.loads(json.dumps(CONFIG))
    update_config(config, PAPER)
    return config


def test_a_paper_config_runs_only_its_hub_models_and_pairs():
    config = active(paper_config())
    assert set(config["models"]) == {"llama2_13b_chat", "llama2_7b_chat"} and set(config["pairs"]) == {"llama2"}
    assert config_errors(config) == []
    toy = active(json.loads(json.dumps(CONFIG)))
    assert set(toy["models"]) == {"teacher", "student"} and set(toy["pairs"]) == {"toy"}


def test_hub_and_toy_models_are_told_what_they_lack():
    config = active(paper_config())
    del config["models"]["llama2_7b_chat"]["vocab_size"]
    config["models"]["llama2_13b_chat"]["corpus"] = "teacher"
    errors = "\n".join(config_errors(config))
    assert "models.llama2_7b_chat.vocab_size: required for a hub model" in errors
    assert "models.llama2_13b_chat.corpus: a hub model is not pretrained here" in errors
    mixed = paper_config()
    mixed["pairs"]["odd"] = {"teacher": "teacher", "student": "llama2_7b_chat"}
    with pytest.raises(ConfigError, match=r"pairs \['odd'\]: a pair's teacher and student must both be toy"):
        active(mixed)


def test_semalign_trains_by_its_papers_recipe_per_task():
    tasks = ["paper_mmlu", "paper_humaneval"]
    semalign = train_settings(PAPER["train"], "semalign", tasks, 2048)
    assert semalign["paper_mmlu"]["epochs"] == 5 and semalign["paper_mmlu"]["lr"] == 3e-4
    assert semalign["paper_humaneval"]["epochs"] == 3 and semalign["paper_humaneval"]["lr"] == 3e-5
    lora = train_settings(PAPER["train"], "lora", tasks, 2048)
    assert lora["paper_humaneval"]["epochs"] == 3 and lora["paper_humaneval"]["lr"] == 3e-4
    assert "per_method" not in lora["paper_mmlu"] and lora["paper_mmlu"]["max_length"] == 2048
    assert lora["paper_mmlu"]["batch_size"] * lora["paper_mmlu"]["grad_accum"] == 64  # the papers' global batch


PAPER_TASKS = ["paper_mmlu", "paper_gsm8k", "paper_humaneval", "paper_mbpp"]


def test_semalign_aligns_and_laten_injects_by_task_as_the_papers():
    """v1 A.2's alignment steps and LaTen's best steps, 2/4/3/8; LaTen trains on MMLU's inputs (README.md:56)."""
    from pkt.methods import get_method

    config = active(paper_config())
    semalign = method_settings(config, "semalign", PAPER_TASKS)
    assert [semalign[t]["align_steps"] for t in PAPER_TASKS] == [2, 4, 3, 8]
    assert {semalign[t]["align_lr"] for t in PAPER_TASKS} == {3e-5} and semalign["paper_mmlu"]["r"] == 16
    laten = method_settings(config, "laten", PAPER_TASKS)
    assert [laten[t]["steps"] for t in PAPER_TASKS] == [2, 4, 3, 8]
    assert [laten[t]["train_on_inputs"] for t in PAPER_TASKS] == [True, False, False, False]
    assert {laten[t]["lr"] for t in PAPER_TASKS} == {1e-5} and "tasks" not in laten["paper_mmlu"]
    lora = method_settings(config, "lora", PAPER_TASKS)
    assert lora["paper_mmlu"] == lora["paper_mbpp"] == config["lora"]  # no task overrides
    assert get_method("laten").from_dict(laten["paper_mmlu"]).config.train_on_inputs is True  # the dataclasses
    assert get_method("semalign").from_dict(semalign["paper_mbpp"]).config.align_steps == 8  # take them
    for method in ("lora", "seeking", "kd", "fitnet"):
        settings = method_settings(config, method, ["paper_mmlu"])["paper_mmlu"]
        assert get_method(method).from_dict(settings).config.r == 16
    toy = method_settings(CONFIG, "laten", ["toy_mmlu"])["toy_mmlu"]
    assert toy["steps"] == 4 and toy["train_on_inputs"] is False  # no tasks map: the section as it is


def test_a_task_map_naming_an_unknown_task_or_too_many_steps_is_named():
    from snakemake.utils import update_config

    config = active(paper_config())
    config["laten"]["tasks"]["paper_mmul"] = {"steps": 2}
    config["semalign"]["align"]["tasks"]["toy_gsm8k"] = {"steps": 2}
    config["laten"]["tasks"]["paper_gsm8k"]["steps"] = 21
    errors = config_errors(config)
    assert "laten.tasks.paper_mmul: 'paper_mmul' is not a task of this config (evaluation.tasks or the splits: " \
           "['paper_mmlu', 'paper_gsm8k', 'paper_humaneval', 'paper_mbpp'])" in errors
    assert any(e.startswith("semalign.align.tasks.toy_gsm8k: 'toy_gsm8k' is not a task") for e in errors)
    assert "laten.tasks.paper_gsm8k.steps: 21 exceeds the extract split of paper_gsm8k: data.paper.files.paper_gsm8k" \
           ".extract (gsm/gsm_extract_split.jsonl, 20 records) has 20 rows (LaTen's schedule spans the split, one " \
           "step per row)" in errors
    assert len(errors) == 3
    toy = json.loads(json.dumps(CONFIG))
    toy["laten"]["steps"] = 17  # toy_humaneval's and toy_mbpp's extract splits hold 16 rows
    assert [e.split(" rows")[0] for e in config_errors(active(toy))] == [
        f"laten.steps: 17 exceeds the extract split of {t}: world.splits.{t}.extract has 16" for t in ("toy_humaneval",
                                                                                                    "toy_mbpp")]
    code = paper_config()  # paper-code.yaml over paper.yaml: two tasks evaluated, the maps name all four
    update_config(code, yaml.safe_load((REPO / "config" / "paper-code.yaml").read_text()))
    assert config_errors(active(code)) == []


MMLU = {"question": "What is 2 + 2? ", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "6"],
        "answer": 1}


def test_the_tulu_protocol_renders_the_open_instruct_prompt_exactly():
    """Open-Instruct's format_subject puts a space before each word (two after "about") and keeps the question
    as it is; GSM8K strips it. (tests/test_open_instruct.py checks every item against Open-Instruct's output.)"""
    assert tulu_prompt("paper_mmlu")(MMLU) == (
        "<|user|>\nThe following are multiple choice questions (with answers) about  elementary mathematics.\n\n"
        "What is 2 + 2? \nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:\n<|assistant|>\nThe answer is:")
    assert tulu_prompt("paper_gsm8k")({"question": "How many? "}) == (
        "<|user|>\nAnswer the following question.\n\nQuestion: How many?\n<|assistant|>\nAnswer:")
    he = tulu_prompt("paper_humaneval")({"prompt": "def f(x):\n    \"\"\"Double x.\"\"\"\n"})
    assert he.endswith("<|assistant|>\nHere is the completed function:\n\n\ndef f(x):\n    \"\"\"Double x.\"\"\"\n")


def test_the_model_template_protocol_hands_lm_eval_the_user_turn_and_the_answer_start():
    cfg = {"task": "paper_mmlu", "doc_to_text": tulu_prompt("paper_mmlu")}
    assert protocol_config(cfg, "tulu") == (cfg, False)
    swapped, apply = protocol_config(cfg, "chat_template")
    assert apply and swapped["gen_prefix"] == "The answer is:" and swapped["doc_to_text"](MMLU).endswith("\nAnswer:")
    assert protocol_config({"task": "toy_mmlu"}, "chat_template") == ({"task": "toy_mmlu"}, False)
    with pytest.raises(ValueError, match="evaluation.protocol 'inst'"):
        protocol_config(cfg, "inst")


def test_mbpp_signature_keeps_the_imports_before_the_function_as_latens_prompts_do():
    code = "from collections import defaultdict \r\ndef get_unique(test_list):\r\n  return 1"
    assert mbpp_signature(code) == "from collections import defaultdict \r\ndef get_unique(test_list)"
    assert mbpp_signature("R = 3\r\ndef min_cost(cost, m, n):\r\n\tpass") == "R = 3\r\ndef min_cost(cost, m, n)"


def test_the_vllm_backend_is_refused_on_the_cpu_and_named_where_it_is_missing():
    import importlib.util

    from pkt.evaluation.vllm_backend import require_vllm

    config = active(paper_config())
    config.update(device="cpu", evaluation={**config["evaluation"], "backend": "vllm"})
    assert any("evaluation.backend: vllm serves models on a GPU" in e for e in config_errors(config))
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(RuntimeError, match="the vllm package is not installed"):
            require_vllm()


def test_seeking_k_beyond_a_real_extract_split_is_named_before_any_job():
    """LaTen's extract splits hold 20 / 20 / 20 / 32 rows: k 32 fits MBPP's alone."""
    config = active(paper_config())
    assert config["seeking"]["k"] is None and config_errors(config) == []  # the shipped choice: every row
    config["seeking"]["k"] = 32
    errors = [e for e in config_errors(config) if e.startswith("seeking.k")]
    assert errors == [f"seeking.k: 32 exceeds the extract split of {task}: data.paper.files.{task}.extract "
                      f"({path}, 20 records) has 20 rows"
                      for task, path in (("paper_mmlu", "mmlu/mmlu_extract_split.jsonl"),
                                         ("paper_gsm8k", "gsm/gsm_extract_split.jsonl"),
                                         ("paper_humaneval", "humaneval/humaneval_extract_split.jsonl"))]
    config["seeking"]["k"], config["data"]["paper"]["limit"] = 8, 6
    assert "(mbpp/mbpp_extract_split.jsonl, 32 records, cut to data.paper.limit 6) has 6 rows" in \
        "\n".join(config_errors(config))


def test_a_pinned_record_count_that_differs_from_the_file_is_named(tmp_path):
    data = line("q", "a") * 3
    (tmp_path / "s.jsonl").write_text(data)
    entry = {"path": "s.jsonl", "sha256": hashlib.sha256(data.encode()).hexdigest(), "records": 4}
    files = {"paper_gsm8k": {split: entry for split in ("train", "extract", "align")}}
    with pytest.raises(ValueError, match=r"files.paper_gsm8k.train.records is 4, but s.jsonl has 3 rows"):
        load_paper_splits({"location": str(tmp_path), "files": files}, ["paper_gsm8k"])
