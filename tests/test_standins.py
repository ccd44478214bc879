"""Every shipped hub config's DAG end to end on CPU, on stand-ins of its own model families (tests/standin.py).

paper.yaml (Llama, untied, multi-head), paper-code.yaml over it (a 32,001-token WizardCoder teacher beside a
32,000-token student: ``shared_vocab_only``), smollm2.yaml (tied embeddings, grouped-query attention, a
teacher shallower than its student) and qwen2.5.yaml (Qwen2 with q/k/v biases, tied, GQA) each run
``tables figures`` with every method they list, on the real LaTen splits unaltered. The models are random,
so the scores mean nothing; what is checked is that every stage runs on inputs shaped like the real ones and
that provenance, protocol and the published rows reach the outputs.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import copy_workflow, snakemake
from standin import COMMIT, DATA, LIMIT, TEST_ITEMS, hub_overlays, run_standin, shipped

from pkt.config_checks import active
from pkt.io import read_jsonl

pytestmark = [pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent"), pytest.mark.slow]
OVERLAYS = hub_overlays()


@pytest.fixture(scope="module", params=OVERLAYS)
def standin(request, tmp_path_factory):
    """(overlay, its shipped config as the run sees it: its hub models and pairs, the results of its stand-in)."""
    root = copy_workflow(tmp_path_factory.mktemp(request.param.removesuffix(".yaml")))
    results, _ = run_standin(request.param, root, snakemake)
    return request.param, active(shipped(request.param)), results


def test_every_shipped_hub_config_has_a_stand_in():
    """Found from config/, so a new hub config is in the list (and gets a stand-in) without an edit here."""
    assert {"paper-code.yaml", "paper.yaml", "qwen2.5.yaml", "smollm2.yaml"} <= set(OVERLAYS)
    assert "smoke.yaml" not in OVERLAYS  # toy overlays run through the smoke and default DAGs


def test_the_real_splits_are_converted_and_every_extract_split_whole(standin):
    _, config, results = standin
    for task in config["evaluation"]["tasks"]:
        for split, file in config["data"]["paper"]["files"][task].items():
            ours = read_jsonl(results / "data" / task / f"{split}.jsonl")
            theirs = [json.loads(line) for line in (DATA / "paper_splits" / file["path"]).read_text().split("\n")
                      if line.strip()][:LIMIT]
            assert len(ours) == min(file["records"], LIMIT) and [r["messages"] for r in ours] == [
                r["messages"] for r in theirs]
            if split == "extract":
                assert len(ours) == file["records"] in (20, 32)  # what Seeking draws its seeds from, whole


def test_hub_models_are_snapshotted_with_their_commit_and_identity(standin):
    _, config, results = standin
    for name in {p[role] for p in config["pairs"].values() for role in ("teacher", "student")}:
        prov = json.loads((results / "models" / name / "provenance.json").read_text())
        assert prov["commit"] == COMMIT and prov["repo_id"] == config["models"][name]["hub"]["repo_id"]
        snapshot = json.loads((results / "models" / name / "config.json").read_text())
        assert snapshot["architectures"] == [config["models"][name]["architecture"]]
        assert snapshot["tie_word_embeddings"] == config["models"][name].get("tie_word_embeddings", False)
        weights = prov["files"]["model.safetensors"]["sha256"]
        assert weights == hashlib.sha256((results / "models" / name / "model.safetensors").read_bytes()).hexdigest()


def test_every_method_is_evaluated_with_the_papers_protocol_and_names_its_model(standin):
    _, config, results = standin
    tasks, pairs = config["evaluation"]["tasks"], config["pairs"]
    vanilla = {p[role] for p in pairs.values() for role in ("teacher", "student")}
    expected = {("vanilla", m, t) for m in vanilla for t in tasks}
    expected |= {(method, pair, t) for method in config["methods"] for pair in pairs for t in tasks}
    found = {(p.parts[-4], p.parts[-3], p.parts[-2]) for p in (results / "eval").rglob("seed0.json")}
    assert found == expected
    for path in (results / "eval").rglob("seed0.json"):
        r = json.loads(path.read_text())
        assert r["protocol"] == config["evaluation"]["protocol"] and r["n"] == TEST_ITEMS[r["task"]]
        assert set(r["items"]["score"]) <= {0.0, 1.0}
        prov = json.loads((results / "models" / r["model"]["name"] / "provenance.json").read_text())
        assert r["model"]["identity"] == prov["identity"] and r["model"]["commit"] == COMMIT


def test_targets_are_half_precision_and_tied_to_the_token_ids(standin):
    _, config, results = standin
    if not {"semalign", "kd", "fitnet"} & set(config["methods"]):
        pytest.skip("no method reads teacher targets")
    for pair in config["pairs"]:
        for task in config["evaluation"]["tasks"]:
            index = json.loads((results / "targets" / pair / task / "index.json").read_text())
            assert index["dtype"] == "float16" and len(index["digests"]) == index["n_examples"]
            assert index["n_examples"] == min(config["data"]["paper"]["files"][task]["train"]["records"], LIMIT)


def test_the_paper_tables_put_the_published_rows_beside_the_reproduced_ones(standin):
    overlay, _, results = standin
    main = (results / "tables" / "main.md").read_text()
    if overlay == "paper.yaml":
        assert "SemAlign, published (SemAlign Table 1, Open-Instruct/Tulu 0-shot)" in main and "50.30" in main
        mmlu = [json.loads(line) for line in (results / "eval" / "lora" / "llama2" / "paper_mmlu" /
                                              "seed0.samples.jsonl").read_text().splitlines()]
        context = mmlu[0]["arguments"][0][0]  # (context, continuation) of the first choice
        assert context.startswith("<|user|>\nThe following are multiple choice questions")
        assert context.endswith("\n<|assistant|>\nThe answer is:")
    if overlay == "paper-code.yaml":
        assert (results / "tables" / "code_teachers.md").is_file()
    assert (results / "figures" / "benchmarks.png").is_file()
