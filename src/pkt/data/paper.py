"""The papers' train/extract/align splits (published with LaTen), checked and converted to task records.

``data.paper.location`` is a folder or a URL prefix at a pinned commit; each file is read whole (through
fsspec, which ``datasets`` already uses for remote files), its sha256 compared with the one in the config
before anything is parsed, and its ``{"messages": [user, assistant]}`` records written in the project's
record schema (:func:`pkt.data.records.make_record`), so every stage reads paper and toy splits alike. The papers'
own ids and MMLU categories are kept as fields (``source_id``, ``category``). Each record carries
``"format": "tulu-reference"`` (:data:`pkt.data.records.REFERENCE_FORMAT`): the papers trained on these
records in their trainers' chat rendering and masking, which :func:`pkt.data.records.encode_supervised`
reproduces for such records (evaluation keeps Open-Instruct's prompt either way).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from pkt.data.records import REFERENCE_FORMAT, make_record, write_manifest, write_split
from pkt.io import jsonl_lines

log = logging.getLogger(__name__)
KEPT_FIELDS = {"id": "source_id", "category": "category", "dataset": "source_dataset"}


class ChecksumError(ValueError):
    """A file whose bytes are not the ones the config pins."""


def read_checked(location: str, path: str, sha256: str) -> bytes:
    """The bytes of ``location/path``, after checking their sha256 (a mismatch is an error naming the file)."""
    import fsspec

    url = f"{location.rstrip('/')}/{path}"
    try:
        with fsspec.open(url, "rb") as f:
            raw = f.read()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"data.paper: {url} does not exist (data.paper.location + files.*.path)") from e
    actual = hashlib.sha256(raw).hexdigest()
    if actual != sha256:
        raise ChecksumError(f"data.paper: {url} has sha256 {actual}, the config pins {sha256}: a different file")
    return raw


def convert(raw: bytes, task: str, source: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The JSONL records of one split file as task records (first ``limit`` only when given)."""
    records = []
    for number, line in enumerate(jsonl_lines(raw.decode("utf-8")), start=1):
        if not line.strip():
            continue
        if limit is not None and len(records) == limit:
            break
        row = json.loads(line)
        messages = row.get("messages") or []
        roles = [m.get("role") for m in messages]
        if roles != ["user", "assistant"]:
            raise ValueError(f"{source} line {number}: expected messages [user, assistant], found {roles}")
        fields = {new: row[old] for old, new in KEPT_FIELDS.items() if old in row}
        records.append(make_record(task, messages[0]["content"], messages[1]["content"], format=REFERENCE_FORMAT,
                                   **fields))
    if not records:
        raise ValueError(f"{source}: no records")
    return records


def load_paper_splits(paper: dict[str, Any], tasks: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{task: {split: records}} of the ``data.paper`` section, every file checked before any is converted."""
    raw = {(task, split): read_checked(f.get("location", paper["location"]), f["path"], f["sha256"])
           for task in tasks for split, f in paper["files"][task].items()}
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (task, split), data in raw.items():
        source, pinned = paper["files"][task][split]["path"], paper["files"][task][split].get("records")
        rows = sum(1 for line in jsonl_lines(data.decode("utf-8")) if line.strip())
        if pinned is not None and rows != pinned:
            raise ValueError(f"data.paper.files.{task}.{split}.records is {pinned}, but {source} has {rows} rows")
        out.setdefault(task, {})[split] = convert(data, task, source, paper.get("limit"))
        log.info("%s %s: %d records from %s", task, split, len(out[task][split]), source)
    return out


def write_data(paper_cfg: dict[str, Any], out_dir: Path, splits: list[str], corpora: list[str]) -> None:
    """Rule ``prepare_data`` (``data.source: paper``): the splits checked, converted and written; no corpora."""
    if corpora:
        raise ValueError(f"the papers' data has no pretraining corpora; asked for {corpora}")
    paths = [Path(p) for p in splits]
    records = load_paper_splits(paper_cfg, sorted({p.parent.name for p in paths}))
    for path in paths:
        task, split = path.parent.name, path.stem
        write_split(path, records[task][split], prefix=f"{task}-{split}")
    write_manifest(out_dir, splits, {"paper": paper_cfg})
