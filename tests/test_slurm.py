"""The smoke DAG through a real one-node SLURM cluster (``profiles/slurm/local_cluster.sh``), and preemption.

Every job but the localrules must go through ``sbatch`` (a SLURM job id per job in Snakemake's log),
every job of a rule that loads a model must ask the scheduler for a GPU (the cluster's are stand-ins),
the evaluations must share allocations as the profile groups them, and this second run from scratch
must equal the local smoke run (``dvc repro``) bit for bit: models, extractions, targets, adapters,
per-item scores and tables. A training job requeued mid-run (``scontrol requeue``, what preemption does) must
resume from its checkpoint and end with the adapter of an uninterrupted run. Skips, saying why, where
the machine cannot host the cluster (not root, or neither SLURM nor apt-get); CI runs as root.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import (
    BIN,
    CPU_RULES,
    LOCAL_RULES,
    NO_SLURM,
    REPO,
    copy_workflow,
    planned_jobs,
    snakemake,
    without_controller,
)
from safetensors.torch import load_file

from pkt.runtime import CPU_PINS

pytestmark = pytest.mark.slow

SCRIPT = REPO / "profiles" / "slurm" / "local_cluster.sh"
PROFILE = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/(rule|group)_(\w+)/")
SMOKE = ("--configfile", "config/smoke.yaml", "--workflow-profile", "profiles/slurm")
BIT_IDENTICAL = (
    "models/teacher/model.safetensors", "models/student/model.safetensors",
    "adapters/lora/toy/toy_mbpp/seed1/adapter_model.safetensors",
    "extract/toy/toy_mmlu/factors.safetensors",
    "adapters/seeking/toy/toy_mbpp/seed1/adapter_model.safetensors",
    "targets/toy/toy_gsm8k/topk_values.npy",
    "adapters/semalign/toy/toy_mbpp/seed1/adapter_model.safetensors",
    "tables/main.md", "tables/vs_lora.md", "tables/semalign_ablation.md",
    "tables/semalign_ablation.csv", "tables/main.csv", "tables/vs_lora.csv", "metrics.json",
)


def unfit_reason() -> str | None:
    if os.geteuid() != 0:
        return "not root: the local SLURM cluster's daemons must be started as root"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = unfit_reason()
    if reason:
        pytest.skip(reason)
    os.environ["PATH"] = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != NO_SLURM)
    up = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=900)
    try:
        assert up.returncode == 0, f"local_cluster.sh up failed:\n{up.stdout[-2000:]}\n{up.stderr[-2000:]}"
        yield
    finally:
        subprocess.run([str(SCRIPT), "down"], capture_output=True, timeout=120)
        os.environ["PATH"] = without_controller(os.environ["PATH"])  # the real scontrol would wait 9 s again


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory) -> tuple[Path, dict[str, int], str]:
    """The smoke DAG run through the cluster: (workflow root, planned jobs per rule, Snakemake's output)."""
    root = copy_workflow(tmp_path_factory.mktemp("slurm"))
    planned = planned_jobs(snakemake(root, *SMOKE, "-n").stdout)
    return root, planned, snakemake(root, *SMOKE).stdout


def scontrol_job(job: str) -> str:
    return subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, check=True).stdout


def test_smoke_dag_through_slurm_submits_every_job_and_equals_the_local_run(slurm_run, smoke_run):
    root, planned, out = slurm_run
    submitted = SUBMITTED.findall(out)
    ids = [job for job, _, _ in submitted]
    assert len(ids) == len(set(ids)) > 20
    (group_size,) = [int(spec.split("=")[1]) for spec in PROFILE["group-components"] if spec.startswith("evaluate=")]
    evaluations = planned["evaluate"] + planned["evaluate_vanilla"]
    singles = sum(n for rule, n in planned.items() if rule not in LOCAL_RULES | {"evaluate", "evaluate_vanilla"})
    by_kind = [(kind, name) for _, kind, name in submitted]
    assert sum(kind == "group" for kind, _ in by_kind) == math.ceil(evaluations / group_size)
    assert sum(kind == "rule" for kind, _ in by_kind) == singles
    for job, _kind, name in submitted:  # the scheduler's own record of what each job asked for
        record = scontrol_job(job)
        assert ("gres:gpu" in record or "gres/gpu" in record) == (name not in CPU_RULES), (name, record)
    mine, local = root / "results" / "smoke", smoke_run / "results" / "smoke"
    for rel in BIT_IDENTICAL:  # a pinned run equals a pinned rerun (and another x86 machine's: pkt.runtime)
        assert (mine / rel).read_bytes() == (local / rel).read_bytes(), rel
    for path in sorted(local.glob("eval/*/*/*/seed*.json")):
        a, b = json.loads(path.read_text()), json.loads((mine / path.relative_to(local)).read_text())
        assert a["items"] == b["items"] and a["value"] == b["value"], path
        assert a["cpu"]["pins"] == b["cpu"]["pins"] == CPU_PINS and b["cpu"]["capability"] == "AVX2", path


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_requeued_training_job_resumes_and_ends_with_an_uninterrupted_runs_adapter(slurm_run, tmp_path):
    root, _, _ = slurm_run
    (root / "longer.yaml").write_text(yaml.safe_dump({"seeds": [0], "train": {"epochs": 20, "save_steps": 10}}))
    args = ("--configfile", "config/smoke.yaml", "longer.yaml")
    adapters = root / "results/smoke/adapters/lora/toy"
    target = str(adapters.relative_to(root) / "toy_mmlu" / "seed0")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(tmp_path / "snakemake.log", "w") as log:
        proc = subprocess.Popen([str(BIN / "snakemake"), "--cores", "2", *args, "--workflow-profile",
                                 "profiles/slurm", target], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            marker = "results/smoke/checkpoints/lora/toy/*/seed0/run-*/checkpoint-*/checkpoint-complete"
            wait_for(lambda: list(root.glob(marker)), 600, "the training job's first complete checkpoint")
            jobs = subprocess.run(["squeue", "-h", "-o", "%i %k"], capture_output=True, text=True).stdout
            (job,) = [line.split()[0] for line in jobs.splitlines() if "rule_train" in line]
            subprocess.run(["scontrol", "requeue", job], check=True)  # what a preemption does to the job
            # SLURM holds a requeued job back for a while before it may start again; skip the wait
            wait_for(lambda: subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                                            capture_output=True).returncode == 0, 60, "the requeued job to pend")
            assert proc.wait(timeout=900) == 0, (tmp_path / "snakemake.log").read_text()[-4000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "Restarts=1" in scontrol_job(job)
    tasks = sorted(p.name for p in adapters.iterdir())
    resumed = [json.loads((adapters / t / "seed0" / "training.json").read_text())["resumed_from"] for t in tasks]
    assert any(resumed), resumed  # one task went on from a checkpoint rather than from step 0
    requeued = {t: load_file(adapters / t / "seed0" / "adapter_model.safetensors") for t in tasks}

    # the same training, locally and never killed (device as the profile sets it, so nothing upstream reruns)
    snakemake(root, target, *args, "--config", "device=auto", "--forcerun", "train")
    for task in tasks:
        straight = load_file(adapters / task / "seed0" / "adapter_model.safetensors")
        assert straight.keys() == requeued[task].keys()
        for key in straight:
            torch.testing.assert_close(requeued[task][key], straight[key], rtol=1e-5, atol=1e-6)
