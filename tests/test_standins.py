"""Every shipped hub config's DAG end to end on CPU, on stand-ins of its own model families (tests/standin.py).

paper.yaml (Llama, untied, multi-head), paper-code.yaml over it (a 32,001-token WizardCoder teacher beside a
32,000-token student: ``shared_vocab_only``), smollm2.yaml (tied embeddings, grouped-query attention, a
teacher shallower than its student) and qwen2.5.yaml (Qwen2 with q/k/v biases, tied, GQA) each run
``tables figures`` with every method they list, on the real LaTen splits unaltered. seeking.yaml (base Llama-2
13B -> 7B, Seeking's own evaluations and its task-transfer grid) runs ``seeking_tables`` too, on local files in the
schema of its reference repository's training sets (tests/seeking_standin.py: CI cannot download them). The models
are random, so the scores mean nothing; what is checked is that every stage runs on inputs shaped like the real
ones and that provenance, protocol and the published rows reach the outputs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, snakemake
from snakemake.utils import update_config
from standin import COMMIT, DATA, LIMIT, TEST_ITEMS, configfiles, hub_overlays, is_seeking, run_standin, shipped
from test_report import check_report

from pkt.config_checks import active, prepared_tasks
from pkt.io import read_jsonl
from pkt.methods.seeking.tables import source_label
from pkt.report.published_seeking import ABLATION_PAIR_NAMES, ABLATIONS, LLAMA2_7B, LLAMA2_13B, PUBLISHED, TRANSFER
from pkt.rows import TRANSFER as TRANSFER_ROW
from pkt.rows import ablation_rows

pytestmark = [pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent"), pytest.mark.slow]
OVERLAYS = hub_overlays()
# Seeking's evaluations keep their own prompts (Open-Instruct's plain format, with shots), not evaluation.protocol.
SEEKING_PROMPTS = {task: f"the task's own prompt, {shots}-shot" for task, shots in (
    ("seeking_gsm8k_0shot", 0), ("seeking_gsm8k_8shot", 8), ("seeking_mmlu_0shot", 0), ("seeking_mmlu_5shot", 5),
    ("seeking_superni", 0))}


@pytest.fixture(scope="module", params=OVERLAYS)
def standin(request, tmp_path_factory):
    """(overlay, its shipped config as the run sees it, with the stand-in's overrides: its hub models and pairs,
    its split files; the results of its stand-in)."""
    root = copy_workflow(tmp_path_factory.mktemp(request.param.removesuffix(".yaml")))
    results, _ = run_standin(request.param, root, snakemake)
    config = shipped(request.param)
    update_config(config, yaml.safe_load((root / "config" / "standin.yaml").read_text()))
    return request.param, active(config), results


def test_every_shipped_hub_config_has_a_stand_in():
    """Found from config/, so a new hub config is in the list (and gets a stand-in) without an edit here."""
    assert {"paper-code.yaml", "paper.yaml", "qwen2.5.yaml", "seeking.yaml", "smollm2.yaml"} <= set(OVERLAYS)
    assert "smoke.yaml" not in OVERLAYS  # toy overlays run through the smoke and default DAGs


def test_the_real_splits_are_converted_and_every_extract_split_whole(standin):
    """Each split the run trains on, as its file holds it: the LaTen splits, or Seeking's stand-in files."""
    _, config, results = standin
    paper = config["data"]["paper"]
    for task in prepared_tasks(config):  # Seeking's: the sets it trains on and those its transfer rows extract from
        for split, file in paper["files"][task].items():
            ours = read_jsonl(results / "data" / task / f"{split}.jsonl")
            source = Path(file.get("location", paper["location"])) / file["path"]
            theirs = [json.loads(line) for line in source.read_text().split("\n") if line.strip()][:LIMIT]
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
    rows = [*config["methods"], *(f"{TRANSFER_ROW}{task}" for task in config["seeking"]["transfer"]),
            *ablation_rows(config["seeking"]["ablation"])]
    expected |= {(method, pair, t) for method in rows for pair in pairs for t in tasks}
    found = {(p.parts[-4], p.parts[-3], p.parts[-2]) for p in (results / "eval").rglob("seed0.json")}
    assert found == expected
    for path in (results / "eval").rglob("seed0.json"):
        r = json.loads(path.read_text())
        protocol = SEEKING_PROMPTS.get(r["task"], config["evaluation"]["protocol"])
        assert r["protocol"] == protocol and r["n"] == TEST_ITEMS[r["task"]]
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


def table_rows(path: Path, index: int = 3) -> tuple[list[str], dict[tuple[str, ...], list[float]]]:
    """A Seeking table's csv: (its score columns, {(pair, row, value): scores}) with the rows in file order (the
    ablation table's index has ``index`` 4 levels: pair, switch, variant, value); an empty cell is NaN."""
    with open(path, newline="") as f:
        header, *lines = list(csv.reader(f))
    return header[index:], {tuple(line[:index]): [float(v or "nan") for v in line[index:]] for line in lines}


def test_seekings_three_tables_put_the_published_rows_beside_the_reproduced_ones(standin):
    """Seeking's own tables: every row reproduced, then published and the difference (the pair's checkpoints are
    Seeking's Llama-2 13B -> 7B), in every column of its evaluations but AlpacaFarm (off: no Avg either); its
    ablations beside the LLaMA-1 bars the paper charts (no Llama-2 bars are published)."""
    _, config, results = standin
    if not is_seeking(config):
        pytest.skip("no Seeking tables: not Seeking's own experiment")
    columns = ["GSM8K 0-shot", "GSM8K 8-shot", "MMLU 0-shot", "MMLU 5-shot", "Super-NI EM", "Super-NI ROUGE-L"]
    published = PUBLISHED[(LLAMA2_13B, LLAMA2_7B)]
    header, main = table_rows(results / "tables" / "seeking_main.csv")
    assert header == columns and [key[1:] for key in main] == [
        (row, value) for row in published for value in ("reproduced", "published", "difference")]
    for row, printed in published.items():  # student, teacher, lora, seeking: Table 1's order
        assert main[("llama2_base", row, "published")] == [printed.scores[c] for c in columns]
    header, transfer = table_rows(results / "tables" / "seeking_transfer.csv")
    sources = [source_label(task) for task in config["seeking"]["transfer"]]  # the stand-in's part of the grid
    assert header == columns and sorted({key[1] for key in transfer}) == sorted(sources)
    assert set(sources) < set(TRANSFER)
    for source in sources:
        shown, printed = transfer[("llama2_base", source, "reproduced")], transfer[("llama2_base", source, "published")]
        assert printed == [TRANSFER[source].scores[c] for c in columns]
        assert transfer[("llama2_base", source, "difference")] == pytest.approx(
            [a - b for a, b in zip(shown, printed)], abs=0.011)  # each rounded to 2 places
    header, ablation = table_rows(results / "tables" / "seeking_ablation.csv", index=4)
    assert header == ["Avg", "Avg - full"]
    charted = [(switch, variant) for switch in config["seeking"]["ablation"] for variant in ABLATIONS[switch]]
    assert list(dict.fromkeys(key[1:3] for key in ablation)) == charted  # every bar, full method and neuron too
    for switch, variant in charted:  # Seeking's Llama-2 checkpoints have no bars: LLaMA-1's, for reference
        reproduced = ablation[("llama2_base", switch, variant, "reproduced")]
        assert (variant == "neuron") == math.isnan(reproduced[0])
        for i, name in enumerate(ABLATION_PAIR_NAMES):
            assert ablation[("llama2_base", switch, variant, f"published {name}")][0] == ABLATIONS[switch][variant][i]
    for name in ("seeking_main", "seeking_transfer", "seeking_ablation"):
        assert "Seeking Neural Nuggets" in (results / "tables" / f"{name}.md").read_text()


def test_the_report_of_a_stand_in_hub_run_has_every_table_and_clean_captions(standin, tmp_path, monkeypatch):
    """``snakemake --report`` of the finished stand-in run, as a paper run's reader gets it: no docutils message,
    every table of the run (Seeking's three too), captions that name the hub models (test_report.check_report)."""
    overlay, config, results = standin
    if overlay not in ("paper.yaml", "seeking.yaml"):
        pytest.skip("one SemAlign paper run and Seeking's suffice: the captions are the same for every hub run")
    seeking, root = is_seeking(config), results.parent.parent
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hub"))  # the config's hub models are read at parse
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    targets = ["tables", "figures", *(["seeking_tables"] if seeking else [])]
    shown = ("Tables", "Figures", "Seeking extraction", *(() if seeking else ("Layer pairing",)))  # Seeking: no pairing
    found = check_report(root, results.name, tmp_path / "report.zip", *targets, "--configfile",
                         *configfiles(overlay), "config/standin.yaml", categories=shown)
    if seeking:
        tables = {f"results/{results.name}/tables/seeking_{name}.csv" for name in ("main", "transfer", "ablation")}
        assert tables <= found.keys()
