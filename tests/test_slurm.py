"""The smoke DAG through a real one-node SLURM cluster (``profiles/slurm/local_cluster.sh``).

Every job but the localrules must go through ``sbatch`` (a SLURM job id per job in Snakemake's log), and
the tables must equal those of the local smoke run. Skips, saying why, where the machine cannot host the
cluster (not root, or neither SLURM nor apt-get); CI runs as root and runs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.slow

SCRIPT = REPO / "profiles" / "slurm" / "local_cluster.sh"
LOCAL_RULES = {"pair_layers", "tables", "figures", "ablation_table", "all"}


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
    up = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=900)
    try:
        assert up.returncode == 0, f"local_cluster.sh up failed:\n{up.stdout[-2000:]}\n{up.stderr[-2000:]}"
        yield
    finally:
        subprocess.run([str(SCRIPT), "down"], capture_output=True, timeout=120)


def test_smoke_dag_through_slurm_submits_every_job_and_equals_the_local_run(cluster, smoke_run, tmp_path):
    root = copy_workflow(tmp_path)
    shutil.copytree(REPO / "profiles", root / "profiles")
    args = ("--configfile", "config/smoke.yaml", "--workflow-profile", "profiles/slurm")
    planned = planned_jobs(snakemake(root, *args, "-n").stdout)
    proc = snakemake(root, *args)
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", proc.stdout)
    remote = sum(n for rule, n in planned.items() if rule not in LOCAL_RULES)
    assert len(submitted) == len(set(submitted)) == remote > 20
    for name in ("main.md", "vs_lora.md", "semalign_ablation.md"):
        mine = (root / "results" / "smoke" / "tables" / name).read_text()
        assert mine == (Path(smoke_run) / "results" / "smoke" / "tables" / name).read_text(), name
