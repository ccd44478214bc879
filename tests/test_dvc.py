"""DVC for real: the smoke DAG through ``dvc repro``, a push to a remote, and a fresh clone that pulls it.

The clone must have nothing left to compute (after ``snakemake --touch``) and the same tables, byte for
byte; ``dvc metrics show``, ``dvc params diff``, ``dvc plots show`` and ``dvc exp run -S`` must see the
run. The ``dvc repro`` run also stands as the second run from scratch: its models, adapters, targets,
per-item scores and tables must equal the plain Snakemake smoke run's, bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import BIN, REPO, copy_workflow, planned_jobs, smoke_config, snakemake

pytestmark = pytest.mark.slow

BIT_IDENTICAL = (
    "models/teacher/model.safetensors", "models/student/model.safetensors",
    "adapters/lora/toy/toy_mbpp/seed1/adapter_model.safetensors",
    "extract/toy/toy_mmlu/factors.safetensors",
    "adapters/seeking/toy/toy_mbpp/seed1/adapter_model.safetensors",
    "targets/toy/toy_gsm8k/topk_values.npy",
    "adapters/semalign/toy/toy_mbpp/seed1/adapter_model.safetensors",
    "tables/semalign_ablation.csv", "tables/main.csv", "tables/vs_lora.csv", "metrics.json",
)
TABLES = ("tables/main.md", "tables/vs_lora.md", "tables/semalign_ablation.md", "metrics.json",
          "training_curves.csv")


def run(cwd: Path, *args: str, stdout_only: bool = False) -> str:
    """Run a command with the venv first on PATH (dvc's stages call ``snakemake``); return its output
    (stdout and stderr, or stdout alone where it must parse as JSON)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout if stdout_only else proc.stdout + proc.stderr


def run_json(cwd: Path, *args: str):
    return json.loads(run(cwd, *args, "--json", stdout_only=True))


def smoke_repo(root: Path) -> Path:
    """A git + DVC checkout of the workflow whose config/config.yaml is the smoke config (dvc.yaml reads it)."""
    root.mkdir()
    copy_workflow(root)
    for name in ("dvc.yaml", ".dvcignore"):
        src = REPO / name
        shutil.copytree(src, root / name) if src.is_dir() else shutil.copy2(src, root / name)
    ignore = [line for line in (REPO / ".gitignore").read_text().splitlines() if line != "results/smoke/"]
    (root / ".gitignore").write_text("\n".join(ignore) + "\n")
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(smoke_config(), sort_keys=False))
    run(root, "git", "init", "-q", "-b", "main")
    run(root, "dvc", "init", "-q")
    run(root, "dvc", "config", "core.analytics", "false")
    return root


def test_dvc_repro_push_clone_pull_touch_has_nothing_to_do(smoke_run, tmp_path):
    origin = smoke_repo(tmp_path / "origin")
    run(origin, "dvc", "remote", "add", "-d", "store", str(tmp_path / "remote"))
    run(origin, "git", "add", "-A")
    run(origin, "git", "commit", "-qm", "workflow")

    run(origin, "dvc", "repro")
    first, second = smoke_run / "results" / "smoke", origin / "results" / "smoke"
    for rel in BIT_IDENTICAL:  # a second run from scratch, through DVC: the same bytes
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    for path in sorted(first.glob("eval/*/*/*/seed*.json")):
        a, b = json.loads(path.read_text()), json.loads((second / path.relative_to(first)).read_text())
        assert a["items"] == b["items"] and a["value"] == b["value"], path

    run(origin, "git", "add", "-A")  # dvc.lock, DVC's .gitignore entries, and the cache: false outs
    run(origin, "git", "commit", "-qm", "smoke results")
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
        assert (clone / "results/smoke" / rel).read_bytes() == (second / rel).read_bytes(), rel
    assert "up to date" in run(clone, "dvc", "status")

    metrics = json.loads((clone / "results/smoke/metrics.json").read_text())
    (shown,) = run_json(clone, "dvc", "metrics", "show").values()  # keyed by revision
    assert shown["data"]["results/smoke/metrics.json"]["data"] == metrics

    curves = (clone / "results/smoke/training_curves.csv").read_text().splitlines()[0].split(",")
    plots = run_json(clone, "dvc", "plots", "show")
    (loss,) = plots["data"]["training loss"]  # the methods that logged a loss (at smoke scale, LaTen only)
    assert {row["field"] for row in loss["content"]["data"]["values"]} == set(curves) - {"step"} != set()

    config = clone / "config" / "config.yaml"
    config.write_text(config.read_text().replace("bootstrap: 1000", "bootstrap: 500"))
    diff = run_json(clone, "dvc", "params", "diff")["config/config.yaml"]
    assert diff["tables.bootstrap"]["old"] == 1000 and diff["tables.bootstrap"]["new"] == 500

    out = run(origin, "dvc", "exp", "run", "-S", "config/config.yaml:tables.bootstrap=500")
    assert "(Rule: tables)" in out and "(Rule: train)" not in out  # only the tables read that key
    (head,) = [e for e in run_json(origin, "dvc", "exp", "show") if e["rev"] != "workspace"]
    (experiment,) = [rev for exp in head["experiments"] for rev in exp["revs"]]
    assert experiment["data"]["params"]["config/config.yaml"]["data"]["tables"]["bootstrap"] == 500
