"""The workflow as a user meets it: lint, dry runs, the smoke DAG, reruns, and bad config."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from conftest import copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.slow


def test_lint_is_clean(tmp_path):
    out = snakemake(copy_workflow(tmp_path), "--lint").stdout
    assert "Congratulations, your workflow is in a good condition!" in out


def test_dry_run_of_default_config_plans_the_whole_dag(tmp_path):
    jobs = planned_jobs(snakemake(copy_workflow(tmp_path), "-n").stdout)
    assert jobs["prepare_data"] == 1
    assert jobs["prepare_tokenizer"] == 1
    assert jobs["prepare_model"] == 2
    assert jobs["probe"] == 2


def test_smoke_dag_writes_models_probes_and_manifest(smoke_run):
    run = smoke_run / "results" / "smoke"
    for model in ("teacher", "student"):
        figures = json.loads((run / "models" / model / "training.json").read_text())
        assert figures["steps"] > 0 and figures["final_loss"] > 0
        assert (run / "models" / model / "model.safetensors").is_file()
        probe = json.loads((run / "probe" / f"{model}.json").read_text())
        assert probe["n_held_out"] + probe["n_control"] == 24
    manifest = json.loads((run / "data" / "manifest.json").read_text())
    assert "toy_mmlu/test.jsonl" in manifest["files"]
    leftovers = [p for p in run.rglob("*.tmp")]
    assert leftovers == []


def test_finished_dag_has_nothing_to_do(smoke_run):
    start = time.perf_counter()
    out = snakemake(smoke_run, "--configfile", "config/smoke.yaml").stdout
    print(f"no-op snakemake took {time.perf_counter() - start:.2f}s")
    assert "Nothing to be done" in out


def test_changing_a_prepare_model_key_reruns_only_that_model_and_descendants(smoke_run):
    change = smoke_run / "change.yaml"
    change.write_text(yaml.safe_dump({"models": {"student": {"pretrain": {"lr": 0.005}}}}))
    out = snakemake(smoke_run, "-n", "--configfile", "config/smoke.yaml", str(change)).stdout
    assert planned_jobs(out) == {"prepare_model": 1, "probe": 1, "all": 1}
    assert "wildcards: model=student" in out and "model=teacher" not in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"world": {"n_entitiez": 3}}, "n_entitiez"),
        ({"world": {"n_entities": "many"}}, "many"),
        ({"world": {"student_fraction": 1.5}}, "1.5"),
        ({"models": {"student": {"tokenizer": "other"}}}, "pairs.toy: teacher 'teacher' uses tokenizer"),
        ({"pairs": {"toy": {"teacher": "giant"}}}, "pairs.toy.teacher: no model named 'giant'"),
        ({"models": {"student": {"num_heads": 3}}}, "models.student: hidden_size 32 is not divisible"),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, override, message):
    root = copy_workflow(tmp_path)
    (root / "bad.yaml").write_text(yaml.safe_dump(override))
    proc = snakemake(root, "--configfile", "config/smoke.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert not (root / "results").exists()


def test_missing_config_file_is_named(tmp_path):
    proc = snakemake(copy_workflow(tmp_path), "--configfile", "config/nowhere.yaml", check=False)
    assert proc.returncode != 0 and "nowhere.yaml" in proc.stdout
