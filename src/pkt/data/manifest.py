"""The data manifest, and the check every consumer of a split makes before it reads one.

``prepare_data`` writes ``<run>/data/manifest.json``: each split's and corpus's sha256 and record count. A
split cut, edited or restored from elsewhere after that would otherwise be read as it is: an evaluation
scoring 100 items instead of 420, with the same settings hash, and the tables failing later at a bootstrap
with "item ids differ", pointing nowhere. So a consumer reads a split through :func:`verified` (training,
importance, extraction, targets, probes: :func:`pkt.data.records.load_split`; the evaluation, whose splits
lm-eval reads, calls it on its data files first), which refuses a file that is not what the manifest
recorded, naming the file, the expected and the found values, before any model is loaded. The identity it
returns (sha256 and records) goes into each result and its settings hash, and the tables check it again
(:func:`check_results`).

The manifest is found beside the data, ``<data>/manifest.json`` for ``<data>/<task>/<split>.jsonl``: every
split the workflow writes has one. A JSONL file outside such a folder (a test's own split, a user's
``evaluation.data`` file) has no manifest; its identity is still recorded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pkt.io import read_json, read_jsonl, sha256_file

MANIFEST = "manifest.json"
FIX = ("the file changed after prepare_data wrote it: restore it (dvc checkout), or rerun prepare_data and every "
       "job that reads it (snakemake --forcerun prepare_data)")


class DataError(ValueError):
    """A data file that is not what the manifest recorded, or a result scored on another version of it."""


def manifest_of(path: str | os.PathLike[str]) -> Path | None:
    """The manifest that lists ``path`` (``<data>/manifest.json`` for ``<data>/<task>/<split>.jsonl``), or None."""
    candidate = Path(path).parent.parent / MANIFEST
    return candidate if candidate.is_file() else None


def entry_of(path: str | os.PathLike[str], manifest: str | os.PathLike[str]) -> tuple[str, dict[str, Any] | None]:
    """(``path`` relative to the manifest's folder, its manifest entry or None)."""
    rel = Path(os.path.relpath(Path(path).resolve(), Path(manifest).resolve().parent)).as_posix()
    return rel, read_json(manifest)["files"].get(rel)


def verified(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(records, identity) of a JSONL split, refused with :class:`DataError` if its manifest records other bytes
    or another count. ``identity``: {file, sha256, records}, plus ``listed: True`` and ``file`` relative to the
    data folder when a manifest lists it."""
    records = read_jsonl(path)  # a line that does not parse names the file and line
    identity = {"file": str(path), "sha256": sha256_file(path), "records": len(records)}
    manifest = manifest_of(path)
    if manifest is None:
        return records, identity
    rel, entry = entry_of(path, manifest)
    if entry is None:
        raise DataError(f"{path}: not listed in {manifest}; a split the workflow did not write")
    identity["file"], identity["listed"] = rel, True
    if (identity["records"], identity["sha256"]) != (entry["records"], entry["sha256"]):
        raise DataError(f"{path}: {identity['records']} records, sha256 {identity['sha256'][:16]}…, but {manifest} "
                        f"recorded {entry['records']} records, sha256 {entry['sha256'][:16]}…; {FIX}")
    return records, identity


def data_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A data file's identity ({file, sha256, records}): checked against its manifest when it is a JSONL split."""
    if str(path).endswith(".jsonl"):
        return verified(path)[1]
    return {"file": str(path), "sha256": sha256_file(path), "records": None}


def check_scored(result: dict[str, Any], identity: dict[str, Any], where: str) -> None:
    """An evaluation must score every record of a split of ours: lm-eval's item count equals the manifest's. (A
    benchmark file of ``evaluation.data`` is not checked: its task may score a subset by design, MBPP's 500 of
    974.)"""
    n, expected = result.get("n"), identity.get("records")
    if identity.get("listed") and result.get("limit") is None and n != expected:
        raise DataError(f"{where}: scored {n} items of {identity['file']}, which has {expected} records "
                        "(an older copy of the file served from a cache?); nothing was written")


def check_results(results: Iterable[tuple[str, dict[str, Any]]], manifest: str | os.PathLike[str]) -> None:
    """Refuse eval results scored on another version of a split than the manifest's: each result's ``data``
    (written by the evaluation) must carry the manifest's sha256 and record count. A result of a task whose
    test split the manifest lists but that records no ``data`` predates the check and is refused too."""
    files = read_json(manifest)["files"]
    wrong = []
    for where, result in results:
        split = f"{result['task']}/test.jsonl"
        if split not in files:
            continue  # a test set from lm-eval (the hub, or evaluation.data): no manifest of ours
        data, entry = result.get("data"), files[split]
        if data is None:
            wrong.append(f"{where}: records no data identity (written before results named their split); rerun it")
        elif (data["sha256"], data["records"]) != (entry["sha256"], entry["records"]):
            wrong.append(f"{where}: scored {split} with {data['records']} records, sha256 {data['sha256'][:16]}…, "
                         f"but {manifest} records {entry['records']}, sha256 {entry['sha256'][:16]}…")
    if wrong:
        raise DataError(f"{len(wrong)} result(s) scored on another version of their split than the manifest's "
                        f"(rerun their evaluate jobs):\n  " + "\n  ".join(wrong))
