"""Sandbox verdicts shared by the evaluate jobs of one run: one sandbox run per distinct program per run.

A pass@1 verdict is a function of the program's bytes and the sandbox (its code and limits): the same
completion of the same problem, produced by two methods or two seeds, gets the same verdict. Evaluate
jobs of a run therefore share a content-addressed store (``results/<run>/sandbox/``, one small JSON file
per program, named by the sha256 of the program and of the sandbox's source): a job runs only the
programs no job of the run has judged yet. About 40% of a default run's programs repeat across jobs
(LaTen's near-zero deltas leave the student's completions unchanged, and correct completions coincide).

Only deterministic verdicts are stored: a wall-clock timeout depends on the machine's load, and a
sandbox failure is not the program's verdict, so both are run again by the next job that meets them.
Files are written atomically (temporary name, then rename), so concurrent jobs never read half a file;
two jobs that judge one program at once both write the same verdict. Deleting the folder only costs time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

SANDBOX = Path(__file__).with_name("sandbox")  # every file of the sandbox package decides verdicts


def sandbox_version() -> str:
    """sha256 of the sandbox's source files: a changed sandbox never reuses an old verdict."""
    digest = hashlib.sha256()
    for path in sorted(SANDBOX.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def storable(verdict: str) -> bool:
    """Whether a verdict (the JSON of a SandboxResult) is the program's own and reproducible."""
    record = json.loads(verdict)
    return record["status"] != "timeout" and not record["reason"].startswith("sandbox")


class VerdictStore:
    """Verdicts by program key under ``folder/<key[:2]>/<key>.json``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder) / sandbox_version()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            return self._path(key).read_text()
        except FileNotFoundError:
            return None

    def put(self, key: str, verdict: str) -> None:
        if not storable(verdict):
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(verdict)
        os.replace(tmp, path)
