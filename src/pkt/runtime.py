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


# One CPU code path for every x86-64 machine with AVX2 (every one of the last decade): tiny models trained from
# scratch otherwise come out differently on AVX-512 and AVX2 machines, and on Intel and AMD. ATen's vectorised
# kernels dispatch by instruction set, MKL picks a path per processor (its conditional numerical
# reproducibility mode fixes one) and oneDNN has its own ceiling. Read when torch (and MKL, oneDNN) load: set
# before the first ``import torch`` of a process (the Snakefile, the Makefile and the tests do).
CPU_PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_cpu(enabled: bool = True, env: dict[str, str] | None = None) -> dict[str, str]:
    """Set :data:`CPU_PINS` in ``env`` (the process environment), or remove them with ``enabled`` False; return
    the pins now set. Child processes (Snakemake's jobs, torchrun's workers) inherit them. A process that has
    already imported torch keeps the code path it started with: :func:`cpu_provenance` reports what it got."""
    env = os.environ if env is None else env
    for key, value in CPU_PINS.items():
        if enabled:
            env[key] = value
        else:
            env.pop(key, None)
    return {k: env[k] for k in CPU_PINS if k in env}


def cpu_provenance() -> dict[str, object]:
    """What decides a CPU job's numbers: the processor, the instruction set ATen's kernels run with (``AVX2``
    when pinned), and the pins in force (none when unpinned). Recorded in every result."""
    import platform

    import torch

    model = platform.processor()
    with contextlib.suppress(OSError):
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), model)
    return {"processor": model, "capability": torch.backends.cpu.get_cpu_capability(),
            "pins": {k: os.environ[k] for k in CPU_PINS if k in os.environ}}


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
