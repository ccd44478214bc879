"""Shared fixtures: a small world config, a copy of the workflow to run Snakemake in, tiny models."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from pkt.runtime import pin_cpu, set_offline

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NO_SLURM = REPO / "tests" / "no_slurm"  # an ``scontrol`` that answers at once (see the file)
set_offline()
pin_cpu()  # before any test imports torch: one CPU code path, as the Snakefile gives every job


def without_controller(path: str) -> str:
    """``path`` (a PATH) with :data:`NO_SLURM` first while no slurmctld runs, and without it while one does:
    with SLURM's client tools installed and no controller, each Snakemake start waits 9 s on ``scontrol``
    (the SLURM executor plugin asks it for a help text), on every dry run, DVC stage and stand-in."""
    parts = [p for p in path.split(os.pathsep) if p and Path(p) != NO_SLURM]
    running = subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True).returncode == 0
    return os.pathsep.join(parts if running else [str(NO_SLURM), *parts])


os.environ["PATH"] = without_controller(os.environ.get("PATH", ""))


# never submitted to a cluster:
LOCAL_RULES = {"pair_layers", "tables", "figures", "ablation_table", "transfer_table", "seeking_tables", "all"}
CPU_RULES = {"prepare_data", "prepare_tokenizer"}  # every other rule that is not a localrule loads a model


def smoke_config() -> dict:
    """config/config.yaml with config/smoke.yaml merged over it: what ``--configfile config/smoke.yaml`` runs,
    in Snakemake's key order too (the overlay's keys first), since Snakemake compares params in order: a
    checkout whose config.yaml is this dict has nothing to rerun under ``--configfile config/smoke.yaml``."""
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config = copy.deepcopy(smoke)
    update_config(config, base)  # as Snakemake: the command-line config first, the Snakefile's configfile
    update_config(config, smoke)  # over it, then the command-line config again
    return config


def small_world(**over) -> dict:
    """The smoke-scale world section, fully populated (defaults + config/smoke.yaml)."""
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["world"]
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())["world"]
    base.update(smoke)
    base.update(over)
    return base


@pytest.fixture
def world_cfg() -> dict:
    return small_world()


def copy_workflow(dest: Path) -> Path:
    """Copy what a user's checkout needs to run the DAG (the library is installed in the venv)."""
    for name in ("Snakefile", "workflow", "scripts", "config", "src", "profiles"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the venv's snakemake in ``cwd``; return the completed process (stdout+stderr merged)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(BIN / "snakemake"), "--cores", "2", *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}")
    return proc


def planned_jobs(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count} (empty when nothing to do)."""
    jobs: dict[str, int] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Job stats:":
            for row in lines[i + 3 :]:
                parts = row.split()
                if len(parts) != 2 or parts[0] == "total":
                    break
                jobs[parts[0]] = int(parts[1])
            break
    return jobs


def run(cwd: Path, *args: str, stdout_only: bool = False) -> str:
    """Run a command with the venv first on PATH (DVC's stages call ``snakemake``); return its output
    (stdout and stderr, or stdout alone where it must parse as JSON)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout if stdout_only else proc.stdout + proc.stderr


def dvc_checkout(root: Path, remote: Path) -> Path:
    """A git + DVC checkout of the workflow, committed, whose config/config.yaml is the smoke config (the
    file dvc.yaml reads) and whose default DVC remote is the folder ``remote``."""
    copy_workflow(root)
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy2(REPO / name, root / name)
    ignore = [line for line in (REPO / ".gitignore").read_text().splitlines() if line != "results/smoke/"]
    (root / ".gitignore").write_text("\n".join(ignore) + "\n")
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(smoke_config(), sort_keys=False))
    run(root, "git", "init", "-q", "-b", "main")
    run(root, "dvc", "init", "-q")
    run(root, "dvc", "config", "core.analytics", "false")
    run(root, "dvc", "remote", "add", "-d", "store", str(remote))
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "workflow")
    return root


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The smoke DAG run once from scratch, the way DVC users run it: ``dvc repro`` in a git + DVC checkout
    (:func:`dvc_checkout`), its results committed. Snakemake with ``--configfile config/smoke.yaml`` sees
    the same config there. tests/test_dvc.py pushes and clones it; tests/test_slurm.py compares a run
    through SLURM with it, bit for bit."""
    root = dvc_checkout(tmp_path_factory.mktemp("smoke"), tmp_path_factory.mktemp("dvc-remote"))
    run(root, "dvc", "repro")
    run(root, "git", "add", "-A")  # dvc.lock, DVC's .gitignore entries, and the cache: false outs
    run(root, "git", "commit", "-qm", "smoke results")
    return root
