"""Trainer checkpoints that only ever continue the same run.

A job killed mid-training (SLURM preemption, OOM, Ctrl-C) is rerun by Snakemake and should resume from
its last checkpoint. Three ways that goes wrong, and what this module does about each:

* **A half-written checkpoint.** A kill during a save leaves ``checkpoint-N`` without its optimiser or
  trainer state, and resuming from it fails on every retry. :class:`MarkComplete` writes a marker
  file into a checkpoint once the Trainer has finished saving it; :func:`resume_point` only resumes
  from a marked checkpoint and deletes unmarked ones.
* **A different run.** A kill, then a config or code edit, then a rerun must not restore the old
  optimiser and schedule. Checkpoints live in ``<checkpoint_dir>/run-<key>``, where the key hashes
  everything that determines the run (:func:`run_key`): the method and its settings, the training
  settings, the seed, the content of the student, the train split and the method's inputs, every
  library file the method's training imports (helpers of other methods and wings included), how it
  computes (the device kind and dtype: ``device: auto`` may resolve to another after a requeue; the
  number of processes, which sets the effective batch under torchrun), and the versions of torch,
  transformers and peft. Folders of other keys are deleted.
* **A finished run.** With ``keep_checkpoints`` a finished run's folder stays; a rerun must train
  again, not resume at the last step and re-save the old adapter. :func:`mark_finished` records the
  end, and :func:`resume_point` wipes a finished folder instead of resuming from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pkt.io import sha256_dir, sha256_file

log = logging.getLogger(__name__)

COMPLETE = "checkpoint-complete"
FINISHED = "run-finished"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _digest(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    return sha256_dir(p) if p.is_dir() else sha256_file(p)


def run_key(
    method: str,
    method_settings: dict[str, Any],
    settings: dict[str, Any],
    seed: int,
    student_dir: str | os.PathLike[str],
    train_split: str | os.PathLike[str],
    inputs: dict[str, str | os.PathLike[str]] | None = None,
    code: Sequence[Path] = (),
    runtime: dict[str, Any] | None = None,
) -> str:
    """A short hash of everything that determines a training run (see the module docstring). ``code``: the
    library files that train it (:func:`pkt.sources.library_files` of the trainer and the method), each named
    by its path inside ``pkt`` so that a copy of the library elsewhere hashes alike; ``runtime``: how the run
    computes ({"device": "cuda", "dtype": "bfloat16", "processes": 2}: :func:`pkt.train.runtime`)."""
    parts = {
        "method": method,
        "method_settings": method_settings,
        "settings": settings,
        "seed": seed,
        "student": _digest(student_dir),
        "train_split": _digest(train_split),
        "inputs": {k: _digest(v) for k, v in sorted((inputs or {}).items())},
        "code": {library_name(c): sha256_file(c) for c in code},
        "runtime": runtime or {},
        "versions": {p: version(p) for p in ("torch", "transformers", "peft")},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def library_name(path: str | os.PathLike[str]) -> str:
    """A library file's path inside its ``pkt`` package (``pkt/methods/kd.py``), wherever the library lies."""
    parts = Path(path).parts
    if "pkt" not in parts[:-1]:
        raise ValueError(f"{path} is not a file of the pkt library")
    last = len(parts) - 2 - parts[-2::-1].index("pkt")  # the innermost folder named pkt
    return "/".join(parts[last:])


def run_dir(checkpoint_dir: str | os.PathLike[str], key: str) -> Path:
    """``<checkpoint_dir>/run-<key>``, created; the folders of other keys (other runs) are deleted."""
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    for other in root.iterdir():
        if other.name != f"run-{key}":
            log.info("removing checkpoints of another run: %s", other)
            if other.is_dir():
                shutil.rmtree(other, ignore_errors=True)
            else:
                other.unlink(missing_ok=True)
    path = root / f"run-{key}"
    path.mkdir(exist_ok=True)
    return path


def resume_point(run: Path) -> Path | None:
    """The newest complete checkpoint of this run, or None to train from scratch.

    Incomplete checkpoints are deleted; a finished run is wiped (it is never resumed).
    """
    if (run / FINISHED).exists():
        log.info("%s holds a finished run: training again from scratch, not resuming", run)
        shutil.rmtree(run)
        run.mkdir()
        return None
    found = sorted((int(m.group(1)), p) for p in run.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name)))
    complete = [p for _, p in found if (p / COMPLETE).is_file()]
    for _, p in found:
        if p not in complete:
            log.warning("ignoring incomplete checkpoint %s (no %s marker): deleting it", p, COMPLETE)
            shutil.rmtree(p, ignore_errors=True)
    return complete[-1] if complete else None


def mark_finished(run: Path) -> None:
    (run / FINISHED).write_text("training finished; a rerun starts afresh\n")


def mark_complete_callback():
    """A ``TrainerCallback`` that marks each checkpoint complete once the Trainer has saved it."""
    from transformers import TrainerCallback

    class MarkComplete(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    (folder / COMPLETE).write_text(f"step {state.global_step}\n")

    return MarkComplete()
