"""The files of SemAlign's teacher targets: rows streamed to disk in half precision, read back memory-mapped.

Per task folder (and its ``align/`` subfolder, the align split's):

* ``teacher<k>.npy``: [N, D_T], the teacher signal paired with student layer k (1-indexed), one row per
  supervised token, taken at the position that predicts it (the one before), examples one after another in
  the order of the encoded split. SemAlign maps it into the student's space at training time (so one set of
  targets serves either coefficient rule), FitNet projects the student's signal onto it;
* ``maps.safetensors`` (task folder only): the [D_S, D_T] matrix of each coefficient rule
  (:func:`pkt.methods.semalign.bases.map_matrix`: ``logit`` and ``cosine``), float32;
* ``topk_values.npy`` / ``topk_ids.npy`` (int32): [N, topk], the teacher's largest next-token logits and their
  ids at the same positions (KD's and v2's KL term);
* ``index.json``: per example the row offset, count and a digest of its token ids; the trained pairs and
  every setting.

Rows are stored as ``float16`` by default (``semalign.targets_dtype``; ``float32`` on request): half the disk
of fp32 (a 13B -> 7B critical pair on LaTen's train splits: about 10.4 KB per response token instead of 20.7),
numpy-native so the files stay memory-mappable, with 11 significant bits (relative rounding <= 2^-11, about
5e-4) and a range to 65,504, which holds Llama's largest residual channels; a value beyond it is refused,
never stored as inf. :class:`TargetWriter` preallocates each file at its final size (the row count is known
from the tokenised split before the teacher runs) and fills it batch by batch, so a job's host memory stays
near one batch whatever the split's length. :class:`Targets` reads the files memory-mapped and hands out
float32 rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

IGNORE_INDEX = -100
DTYPES = ("float16", "float32")


def token_digests(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[str]:
    """Per row, a short sha256 of its token ids (the unpadded ones, whatever the padding side): what ties a
    stored target row to the exact example training feeds, beyond its count of supervised positions."""
    ids, mask = input_ids.detach().cpu(), attention_mask.detach().cpu().bool()
    return [hashlib.sha256(row[keep].numpy().astype(np.int64).tobytes()).hexdigest()[:16]
            for row, keep in zip(ids, mask)]


def supervised_rows(batches: Sequence[Mapping[str, torch.Tensor]]) -> int:
    """Rows the targets of these batches take: their supervised (response) positions."""
    return sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in batches)


def row_bytes(widths: Mapping[int, int], topk: int, dtype: str) -> int:
    """Bytes one supervised position takes on disk: every pair's teacher row, the top-k values (``dtype``) and
    ids (int32). ``widths``: {student layer: D_T}."""
    size = np.dtype(dtype).itemsize
    return sum(widths.values()) * size + topk * (size + 4)


MAPS_FILE = "maps.safetensors"


def save_maps(folder: str | os.PathLike[str], maps: Mapping[str, torch.Tensor]) -> None:
    """Each coefficient rule's [D_S, D_T] matrix into ``folder/maps.safetensors`` (float32)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().float().cpu().contiguous() for k, v in maps.items()}, str(Path(folder) / MAPS_FILE))


def load_map(folder: str | os.PathLike[str], kind: str) -> torch.Tensor:
    """The [D_S, D_T] matrix of coefficient rule ``kind`` stored with a task's targets."""
    from safetensors.torch import load_file

    path = Path(folder) / MAPS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no SemAlign maps at {path}: targets written by an older version; rerun "
                                "teacher_targets")
    maps = load_file(str(path))
    if kind not in maps:
        raise KeyError(f"{path} holds the maps {sorted(maps)}, not {kind!r} (semalign.map)")
    return maps[kind]


class TargetWriter:
    """A target folder's arrays preallocated as ``.npy`` memmaps of their final shape, filled in order."""

    def __init__(self, folder: str | os.PathLike[str], n_rows: int, widths: Mapping[int, int],
                 topk: int, dtype: str = "float16") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"semalign.targets_dtype must be one of {DTYPES}, got {dtype!r}")
        self.folder, self.n_rows, self.dtype = Path(folder), n_rows, np.dtype(dtype)
        self.folder.mkdir(parents=True, exist_ok=True)

        def array(name: str, width: int, dt) -> np.ndarray:
            return np.lib.format.open_memmap(self.folder / name, mode="w+", dtype=dt, shape=(n_rows, width))

        self.arrays = {f"teacher{k}": array(f"teacher{k}.npy", d_t, self.dtype) for k, d_t in widths.items()}
        self.arrays["topk_values"] = array("topk_values.npy", topk, self.dtype)
        self.arrays["topk_ids"] = array("topk_ids.npy", topk, np.int32)
        self.layers = sorted(widths)
        self.cursor, self.counts, self.digests = 0, [], []

    def add(self, part: Mapping[str, Any]) -> None:
        """One batch's rows (:func:`pkt.methods.semalign.targets.target_batches`), after the previous ones."""
        n = int(sum(part["counts"]))
        if self.cursor + n > self.n_rows:
            raise ValueError(f"{self.folder}: more rows than the {self.n_rows} planned")
        named = {**{f"teacher{k}": v for k, v in part["teacher_rows"].items()},
                 "topk_values": part["topk_values"], "topk_ids": part["topk_ids"]}
        for name, values in named.items():
            with np.errstate(over="ignore"):  # an overflow becomes inf, refused below with its magnitude
                stored = np.asarray(values).astype(self.arrays[name].dtype)
            if name != "topk_ids" and not np.isfinite(stored).all():
                peak = float(np.abs(np.asarray(values, dtype=np.float64)).max())
                raise ValueError(f"{self.folder}/{name}.npy: a value of magnitude {peak:.3g} does not fit "
                                 f"{self.dtype.name}; set semalign.targets_dtype: float32")
            self.arrays[name][self.cursor : self.cursor + n] = stored
        self.cursor += n
        self.counts += list(part["counts"])
        self.digests += list(part["digests"])

    def close(self, meta: Mapping[str, Any]) -> None:
        """Flush the arrays and write ``index.json``; every planned row must have been written."""
        if self.cursor != self.n_rows:
            raise ValueError(f"{self.folder}: {self.cursor} rows written, {self.n_rows} planned")
        for array in self.arrays.values():
            array.flush()
        self.arrays.clear()
        offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(int).tolist() if self.counts else []
        index = {**meta, "n_examples": len(self.counts), "counts": self.counts, "offsets": offsets,
                 "digests": self.digests, "layers": self.layers, "layer_index_base": 1,
                 "dtype": self.dtype.name}
        (self.folder / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True))


def write_targets(folder: str | os.PathLike[str], computed: Mapping[str, Any], meta: Mapping[str, Any],
                  dtype: str = "float16", maps: Mapping[str, torch.Tensor] | None = None) -> None:
    """Arrays computed in memory (:func:`pkt.methods.semalign.targets.compute_targets`) written as one part, with
    the ``maps`` (:func:`save_maps`) when given."""
    widths = {k: rows.shape[1] for k, rows in computed["teacher_rows"].items()}
    writer = TargetWriter(folder, len(computed["topk_ids"]), widths, computed["topk_ids"].shape[1], dtype)
    writer.add(computed)
    writer.close(meta)
    if maps is not None:
        save_maps(folder, maps)


class Targets:
    """Stored teacher targets of one task, memory-mapped; rows gathered per batch by example index."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        index_file = self.folder / "index.json"
        if not index_file.is_file():
            raise FileNotFoundError(f"no teacher targets at {self.folder} (index.json missing): run teacher_targets")
        self.index = json.loads(index_file.read_text())
        self.layers: list[int] = self.index["layers"]
        self.pairs: list[dict[str, Any]] = self.index["pairs"]
        missing = [f"teacher{k}.npy" for k in self.layers if not (self.folder / f"teacher{k}.npy").is_file()]
        if missing:
            raise FileNotFoundError(f"the targets at {self.folder} lack {missing} (written by an older version, or "
                                    "damaged): rerun teacher_targets")
        self.teacher_rows = {k: np.load(self.folder / f"teacher{k}.npy", mmap_mode="r") for k in self.layers}
        self.topk_values = np.load(self.folder / "topk_values.npy", mmap_mode="r")
        self.topk_ids = np.load(self.folder / "topk_ids.npy", mmap_mode="r")
        self._checked: set[int] = set()  # examples whose token ids matched the stored digests

    def __len__(self) -> int:
        return self.index["n_examples"]

    def examples_of(self, inputs: Mapping[str, torch.Tensor]) -> tuple[list[int], list[int]]:
        """A training batch's example indices and supervised-position counts, each example's token ids checked
        once against those the targets were computed from (another tokenizer with the same counts, e.g. one
        that added a ``[PAD]``, would otherwise pass)."""
        examples = inputs["example_index"].tolist()
        counts = (inputs["labels"] != IGNORE_INDEX).sum(1).tolist()
        if "digests" not in self.index:
            raise ValueError(f"the targets at {self.folder} hold no token digests (written by an older version): "
                             "rerun teacher_targets")
        unchecked = [b for b, i in enumerate(examples) if i not in self._checked]
        if unchecked:
            digests = token_digests(inputs["input_ids"][unchecked], inputs["attention_mask"][unchecked])
            for b, digest in zip(unchecked, digests):
                i = examples[b]
                if not 0 <= i < len(self):
                    raise IndexError(f"example {i} is not in the targets at {self.folder} ({len(self)} examples)")
                if self.index["digests"][i] != digest:
                    raise ValueError(f"example {i}: its token ids differ from those the targets at {self.folder} "
                                     "were computed from (another tokenizer, max_length or split?); rerun "
                                     "teacher_targets")
                self._checked.add(i)
        return examples, counts

    def _slices(self, examples: Sequence[int], counts: Sequence[int]) -> list[slice]:
        out = []
        for i, n in zip(examples, counts):
            if not 0 <= i < len(self):
                raise IndexError(f"example {i} is not in the targets at {self.folder} ({len(self)} examples)")
            if self.index["counts"][i] != n:
                raise ValueError(f"example {i}: {n} supervised positions in training but "
                                 f"{self.index['counts'][i]} in the stored targets: the tokens differ "
                                 "(another tokenizer, max_length or split?); rerun teacher_targets")
            out.append(slice(self.index["offsets"][i], self.index["offsets"][i] + n))
        return out

    def teacher_layer_width(self, k: int) -> int:
        """D_T of the teacher signal paired with student layer k."""
        return int(self.teacher_rows[k].shape[1])

    def teacher_layer(self, k: int, examples: Sequence[int], counts: Sequence[int]) -> list[torch.Tensor]:
        """Per example, the [count, D_T] teacher signal paired with student layer k (float32)."""
        return [torch.from_numpy(np.array(self.teacher_rows[k][s], dtype=np.float32))
                for s in self._slices(examples, counts)]

    def topk(self, examples: Sequence[int], counts: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's stored top-k logits and ids, concatenated in example order: ([N, k], [N, k])."""
        slices = self._slices(examples, counts)
        values = np.concatenate([self.topk_values[s] for s in slices]).astype(np.float32)  # a new array
        ids = np.concatenate([self.topk_ids[s] for s in slices]).astype(np.int64)
        return torch.from_numpy(values), torch.from_numpy(ids)
