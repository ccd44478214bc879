"""Process-level setup shared by every rule script: logging, threads, seeds, device.

Kept free of Snakemake so that the same calls serve a rule script, a test and a ``torchrun`` CLI.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("pkt")

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@contextlib.contextmanager
def job_logging(log_file: str | os.PathLike[str] | None, level: int = logging.INFO) -> Iterator[None]:
    """Send ``logging``, stdout and stderr (tqdm bars, Trainer logs, tracebacks) to ``log_file``."""
    if log_file is None:
        logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        yield
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", buffering=1, encoding="utf-8") as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(level)
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = fh
        try:
            yield
        except BaseException:
            log.exception("job failed")
            raise
        finally:
            sys.stdout, sys.stderr = old
            root.removeHandler(handler)


def set_offline() -> None:
    """Forbid hub access for toy runs and tests (nothing here may download weights or data)."""
    os.environ.update(OFFLINE_ENV)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for a reproducible job."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_torch(threads: int, seed: int | None = None) -> None:
    """Pin torch's intra-op threads to the job's cores so that parallel jobs do not oversubscribe."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    if seed is not None:
        seed_everything(seed)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; an explicit ``cuda`` must exist."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"config key device={device!r} but no CUDA device is visible; use cpu or auto")
    return device


ON_RESTART = {
    "train": "each adapter resumes from its last complete checkpoint (pkt.checkpoints); finished adapters "
             "train again from scratch, to the same weights",
    "extract": "extraction starts over (one sensitivity pass per task, no checkpoint); nothing half-written "
               "is left by the killed run, every output is written atomically",
    "targets": "teacher targets start over (one teacher pass per task, no checkpoint); each task's folder "
               "is written atomically, so the killed run left none half-written",
    "evaluate": "evaluation starts over; programs the killed run already judged are not run again "
                "(run-wide verdict store, pkt.evaluation.verdicts), so code tasks go faster the second time",
    "pretrain": "pretraining starts over (toy models only: minutes on a CPU)",
}


def announce_restart(stage: str, env: dict[str, str] | None = None) -> int:
    """Log what ``stage`` does when the scheduler restarted its job; return the restart count (0: first run).

    SLURM sets ``SLURM_RESTART_COUNT`` in a requeued job (preemption, ``scontrol requeue``, a node
    failure with ``--requeue``). Every output is written atomically, so a restart never reads a
    half-written file; what differs between stages is whether the work resumes or starts over.
    """
    count = int((os.environ if env is None else env).get("SLURM_RESTART_COUNT", "0") or 0)
    if count:
        log.warning("SLURM restart %d of this job: %s", count, ON_RESTART[stage])
    return count
