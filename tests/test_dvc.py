"""DVC for real: the smoke DAG through ``dvc repro`` (the shared ``smoke_run``), a push to a remote, and a
fresh clone that pulls it.

The clone must have nothing left to compute (after ``snakemake --touch``) and the same tables, byte for
byte; ``dvc status``, ``dvc metrics show``, ``dvc plots show``, ``dvc params diff`` and
``dvc exp run -S`` must see the run.
"""

from __future__ import annotations

import json

import pytest
from conftest import planned_jobs, run, snakemake

pytestmark = pytest.mark.slow

TABLES = ("tables/main.md", "tables/vs_lora.md", "tables/semalign_ablation.md", "metrics.json",
          "training_curves.csv")


def run_json(cwd, *args: str):
    return json.loads(run(cwd, *args, "--json", stdout_only=True))


def test_dvc_repro_push_clone_pull_touch_has_nothing_to_do(smoke_run, tmp_path):
    origin = smoke_run
    assert "didn't change" in run(origin, "dvc", "repro")  # dvc.lock matches the workspace: nothing to run
    assert "Everything is up to date" not in run(origin, "dvc", "push")

    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(origin), str(clone))
    run(clone, "dvc", "pull")
    snakemake(clone, "--touch")
    assert planned_jobs(snakemake(clone, "-n").stdout) == {}  # nothing to recompute
    regenerate = ("tables", "figures", "ablation_table")  # the README's "tables only, from pulled results"
    planned = planned_jobs(snakemake(clone, "-n", "--forcerun", *regenerate).stdout)
    assert planned == {"tables": 1, "figures": 1, "ablation_table": 1, "all": 1}
    for rel in (*TABLES, "adapters/kd/toy/toy_gsm8k/seed0/adapter_model.safetensors"):
        assert (clone / "results/smoke" / rel).read_bytes() == (origin / "results/smoke" / rel).read_bytes(), rel
    assert "up to date" in run(clone, "dvc", "status")

    metrics = json.loads((clone / "results/smoke/metrics.json").read_text())
    (shown,) = run_json(clone, "dvc", "metrics", "show").values()  # keyed by revision
    assert shown["data"]["results/smoke/metrics.json"]["data"] == metrics

    curves = (clone / "results/smoke/training_curves.csv").read_text().splitlines()[0].split(",")
    plots = run_json(clone, "dvc", "plots", "show")
    (loss,) = plots["data"]["training loss"]  # a line per method (at smoke scale only LaTen logs a loss)
    assert {row["field"] for row in loss["content"]["data"]["values"]} == set(curves) - {"step"} != set()

    config = clone / "config" / "config.yaml"
    config.write_text(config.read_text().replace("bootstrap: 1000", "bootstrap: 500"))
    diff = run_json(clone, "dvc", "params", "diff")["config/config.yaml"]
    assert diff["tables.bootstrap"]["old"] == 1000 and diff["tables.bootstrap"]["new"] == 500

    run(clone, "git", "checkout", "config/config.yaml")
    out = run(clone, "dvc", "exp", "run", "-S", "config/config.yaml:tables.bootstrap=500")
    assert "(Rule: tables)" in out and "(Rule: train)" not in out  # only the tables read that key
    (head,) = [e for e in run_json(clone, "dvc", "exp", "show") if e["rev"] != "workspace"]
    (experiment,) = [rev for exp in head["experiments"] for rev in exp["revs"]]
    assert experiment["data"]["params"]["config/config.yaml"]["data"]["tables"]["bootstrap"] == 500
