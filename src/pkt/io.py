"""Atomic, checksummed file output.

Every stage writes through these helpers so that a job killed half-way (Ctrl-C, SLURM preemption,
out-of-memory) never leaves a file or directory that looks finished: content goes to a temporary
name beside the target and is renamed into place only once it is complete. ``os.replace`` is atomic
on POSIX file systems when source and target share a directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def _tmp_sibling(path: Path, is_dir: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path that is renamed to ``path`` when the block succeeds."""
    target = Path(path)
    tmp = _tmp_sibling(target, is_dir=False)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` (removing any old one) on success."""
    target = Path(path)
    tmp = _tmp_sibling(target, is_dir=True)
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically (stable bytes for DVC and git diffs)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]], default: Any = None) -> int:
    """Write one JSON object per line atomically; return the number of records.

    ``default`` converts values JSON cannot encode (as in ``json.dumps``).
    """
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True, default=default) for r in records]
    write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, naming the path if it is missing."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"expected a JSON file at {p}, found none")
    return json.loads(p.read_text(encoding="utf-8"))


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file into a list of dicts, naming the path if it is missing and the file and line of a line
    that does not parse (a file cut mid-line), where json or pyarrow would name neither."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"expected a JSONL file at {p}, found none")
    records = []
    for number, line in enumerate(jsonl_lines(p.read_text(encoding="utf-8")), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}:{number}: not a JSON line ({e.msg} at column {e.colno}; a file cut or edited "
                             "by hand?)") from None
    return records


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL text, split at "\n" only: ``str.splitlines`` also splits at U+0085, U+2028 and other
    separators that a JSON string may hold raw (the MMLU align split of the LaTen release has a U+0085)."""
    return text.split("\n")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_dir(path: str | os.PathLike[str]) -> str:
    """One sha256 over a directory's files (relative names and contents), independent of mtimes."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()
