"""SemAlign's teacher targets, computed once and stored, so that training never loads the teacher.

The ``teacher_targets`` rule runs the teacher over a task's train split (the same examples, tokens and
length rule as training: :func:`pkt.data.records.encode_split`), takes the signal of each trained pair's teacher
layer at every supervised position (the response tokens), interpolates between two teacher layers where
the pairing says so, maps it into the student's space through the semantic bases
(:func:`pkt.methods.semalign.bases.map_teacher`) and writes, per task folder:

* ``layer<k>.npy``: float32 [N, D_S], the targets of student layer k (1-indexed), one row per supervised
  position, examples one after another in the order of the encoded split;
* ``teacher<k>.npy``: float32 [N, D_T], the same positions' teacher signal *before* the map (FitNet's target,
  which a learned projector reaches instead of the vocabulary-defined map);
* ``topk_values.npy`` / ``topk_ids.npy``: [N, topk], the teacher's largest next-token logits and their
  ids at the position before each supervised token (v2's KL term);
* ``index.json``: per example the row offset and count, the trained pairs and every setting.

:class:`Targets` reads them memory-mapped (``numpy.load(mmap_mode="r")``) and gathers a batch's rows by
example index, checking that the student's supervised positions match in number.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pkt.layers.importance import IGNORE_INDEX, decoder_layers, hidden_state, layer_input, predicting_positions
from pkt.layers.pairing import interpolation

SIGNALS = ("delta", "output")
TARGET_FIELDS = ("pairs", "signal", "interpolate", "topk")  # the semalign keys that decide the targets
PAIRS = ("critical", "all")


@dataclass(frozen=True)
class TargetSettings:
    """The ``semalign`` settings that decide the targets (the rest decide training)."""

    pairs: str = "critical"  # critical: the pairing's (l_T(k†), k†); all: every pair of the depth map
    signal: str = "delta"  # delta: the layer's residual contribution h_l - h_(l-1); output: h_l
    interpolate: bool = True  # (1 - lambda) h^(a) + lambda h^(b) where the depth ratio is not integral
    topk: int = 32  # teacher logits kept per position for the KL term

    def __post_init__(self) -> None:
        if self.pairs not in PAIRS:
            raise ValueError(f"semalign.pairs must be one of {PAIRS}, got {self.pairs!r}")
        if self.signal not in SIGNALS:
            raise ValueError(f"semalign.signal must be one of {SIGNALS}, got {self.signal!r}")
        if self.topk < 1:
            raise ValueError(f"semalign.topk must be >= 1, got {self.topk}")


def trained_pairs(pairing: Mapping[str, Any], how: str, interpolate: bool) -> list[dict[str, Any]]:
    """The pairs to align, from a pairing file: [{student: k, sources: [(teacher layer, weight), ...]}].

    Layers are 1-indexed. A source list has one teacher layer (weight 1) or, with interpolation at a
    non-integral depth ratio, layers a and a+1 with weights 1 - lambda and lambda.
    """
    n_t, n_s = pairing["n_teacher"], pairing["n_student"]
    integral = pairing["ratio"]["integral"]
    if how == "critical":
        chosen = [(pairing["pair"]["student"], pairing["pair"]["teacher"])]
    elif how == "all":
        chosen = [(row["student"], row["teacher"]) for row in pairing["depth_map"]]
    else:
        raise ValueError(f"semalign.pairs must be one of {PAIRS}, got {how!r}")
    pairs = []
    for k, teacher in chosen:
        if interpolate and not integral:
            a, b, lam = interpolation(n_t, n_s, k)
            sources = [(a, 1.0 - lam), (b, lam)]
        else:
            sources = [(teacher, 1.0)]
        pairs.append({"student": k, "sources": sources})
    return pairs


def token_digests(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[str]:
    """Per row, a short sha256 of its token ids (the unpadded ones, whatever the padding side): what ties a
    stored target row to the exact example training feeds, beyond its count of supervised positions."""
    ids, mask = input_ids.detach().cpu(), attention_mask.detach().cpu().bool()
    return [hashlib.sha256(row[keep].numpy().astype(np.int64).tobytes()).hexdigest()[:16]
            for row, keep in zip(ids, mask)]


def residual_signal(output: torch.Tensor, layer_in: torch.Tensor | None, signal: str) -> torch.Tensor:
    """A layer's signal: its output h_l (``output``), or its residual contribution h_l - h_(l-1) (``delta``),
    subtracted in fp32: in bf16, where a large residual channel sits beside a small one, the rounded difference
    can be off by as much as the contribution itself."""
    if signal == "delta":
        return output.float() - layer_in.float()
    return output


def layer_signals(model: nn.Module, batch: Mapping[str, torch.Tensor], layers: Sequence[int], signal: str
                  ) -> tuple[dict[int, torch.Tensor], Any]:
    """{layer (0-indexed): [B, T, D] signal} from one forward pass, and the model's outputs.

    ``delta`` is the layer's output minus its input (its residual contribution), ``output`` its output.
    """
    blocks = decoder_layers(model)
    outs: dict[int, torch.Tensor] = {}
    ins: dict[int, torch.Tensor] = {}
    handles = []
    for i in set(layers):
        handles.append(blocks[i].register_forward_hook(lambda _m, _a, out, i=i: outs.__setitem__(i, hidden_state(out))))
        if signal == "delta":
            handles.append(blocks[i].register_forward_pre_hook(
                lambda _m, args, kwargs, i=i: ins.__setitem__(i, layer_input(args, kwargs)), with_kwargs=True))
    try:
        result = model(**{k: batch[k] for k in ("input_ids", "attention_mask")}, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return {i: residual_signal(outs[i], ins.get(i), signal) for i in outs}, result


@torch.no_grad()
def compute_targets(teacher: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]],
                    pairs: Sequence[Mapping[str, Any]], matrix: torch.Tensor, signal: str, topk: int,
                    vocab: int | None = None) -> dict[str, Any]:
    """Run the teacher over ``batches`` (padded, in split order); return the arrays and index to store.

    The top-k logits are taken over the first ``vocab`` ids (the vocabulary shared with the student, default
    all): a teacher that appended a token (WizardCoder's [PAD], id 32,000) must not hand the student an id
    outside its head."""
    layers = sorted({t - 1 for p in pairs for t, _ in p["sources"]})
    rows: dict[int, list[np.ndarray]] = {p["student"]: [] for p in pairs}
    raw: dict[int, list[np.ndarray]] = {p["student"]: [] for p in pairs}
    values, ids, counts, digests = [], [], [], []
    teacher.eval()
    device = next(teacher.parameters()).device
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        signals, out = layer_signals(teacher, batch, layers, signal)
        mask = batch["labels"] != IGNORE_INDEX  # supervised positions: the response tokens
        prev = predicting_positions(mask)
        if not torch.equal(prev.sum(1), mask.sum(1)):
            raise ValueError("a supervised token at position 0 has no logits before it: the prompt must come first")
        counts += mask.sum(1).tolist()
        digests += token_digests(batch["input_ids"], batch["attention_mask"])
        for p in pairs:
            mixed = sum(w * signals[t - 1].float() for t, w in p["sources"])[mask]
            rows[p["student"]].append(semalign_map(mixed, matrix).cpu().numpy())
            raw[p["student"]].append(mixed.cpu().numpy())
        logits = out.logits[prev][:, :vocab]
        top = logits.float().topk(min(topk, logits.shape[-1]), dim=-1)
        values.append(top.values.cpu().numpy())
        ids.append(top.indices.to(torch.int32).cpu().numpy())
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist() if counts else []
    return {"rows": {k: np.concatenate(v) for k, v in rows.items()},
            "teacher_rows": {k: np.concatenate(v) for k, v in raw.items()}, "topk_values": np.concatenate(values),
            "topk_ids": np.concatenate(ids), "counts": counts, "offsets": offsets, "digests": digests}


def semalign_map(h: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Teacher vectors -> student space (the precomputed M = S_S S_T^T; :mod:`pkt.methods.semalign.bases`)."""
    from pkt.methods.semalign.bases import map_teacher

    return map_teacher(h, matrix.to(h.device))


def student_map(teacher: nn.Module, student_dir: str | os.PathLike[str], names: Sequence[str],
                shared_vocab_only: bool) -> tuple[torch.Tensor, int]:
    """M = S_S S_T^T from the teacher's LM head and the saved student's (no student model is built; a tied
    student's head is its input embedding), computed on the teacher's device, and the size of the vocabulary
    the bases are aligned over."""
    from pkt.methods.semalign.bases import mapping_matrix, semantic_bases, shared_vocab_size
    from pkt.models.build import load_output_head

    head_t = teacher.get_output_embeddings().weight.detach()
    head_s = load_output_head(student_dir).to(head_t.device)
    m = shared_vocab_size(head_t.shape[0], head_s.shape[0], *names, shared_vocab_only)
    return mapping_matrix(semantic_bases(head_s[:m].double()), semantic_bases(head_t[:m].double())), m


def write_task_targets(folder: Path, teacher: nn.Module, tokenizer, splits: Mapping[str, str | os.PathLike[str]],
                       pairs: Sequence[Mapping[str, Any]], matrix: torch.Tensor, settings: TargetSettings,
                       batch_size: int, max_length: int, meta: Mapping[str, Any], vocab: int | None = None) -> None:
    """One task's targets: the train split's into ``folder``, the align split's (v1's alignment phase) into
    ``folder/align``; ``splits`` = {"train": path, "align": path}. The caller makes ``folder`` atomic."""
    from pkt.data.records import load_split, supervised_batches

    for name, split in splits.items():
        start = time.perf_counter()
        out = folder if name == "train" else folder / name
        out.mkdir(exist_ok=True)
        batches, length_rule = supervised_batches(load_split(split), tokenizer, batch_size, max_length)
        computed = compute_targets(teacher, batches, pairs, matrix, settings.signal, settings.topk, vocab)
        write_targets(out, computed, {**meta, "split": str(split), "pairs": pairs, "signal": settings.signal,
                                      "topk": settings.topk, "length_rule": length_rule,
                                      "wall_s": round(time.perf_counter() - start, 2)})


def write_targets(folder: str | os.PathLike[str], computed: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """The arrays as .npy files and ``index.json`` into ``folder`` (the caller makes it atomic)."""
    folder = Path(folder)
    for k, array in computed["rows"].items():
        np.save(folder / f"layer{k}.npy", array.astype(np.float32))
    for k, array in computed.get("teacher_rows", {}).items():
        np.save(folder / f"teacher{k}.npy", array.astype(np.float32))
    np.save(folder / "topk_values.npy", computed["topk_values"].astype(np.float32))
    np.save(folder / "topk_ids.npy", computed["topk_ids"].astype(np.int32))
    index = {**meta, "n_examples": len(computed["counts"]), "counts": computed["counts"],
             "offsets": computed["offsets"], "digests": computed["digests"], "layers": sorted(computed["rows"]),
             "layer_index_base": 1}
    (folder / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True))


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
        self.rows = {k: np.load(self.folder / f"layer{k}.npy", mmap_mode="r") for k in self.layers}
        self.teacher_rows = {k: np.load(self.folder / f"teacher{k}.npy", mmap_mode="r") for k in self.layers
                             if (self.folder / f"teacher{k}.npy").is_file()}
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

    def layer(self, k: int, examples: Sequence[int], counts: Sequence[int]) -> list[torch.Tensor]:
        """Per example, the [count, D_S] targets of student layer k."""
        return [torch.from_numpy(np.array(self.rows[k][s])) for s in self._slices(examples, counts)]  # copies

    def teacher_layer_width(self, k: int) -> int:
        """D_T of the unmapped teacher signal paired with student layer k."""
        self.teacher_layer(k, [], [])  # names the missing file, if any
        return int(self.teacher_rows[k].shape[1])

    def teacher_layer(self, k: int, examples: Sequence[int], counts: Sequence[int]) -> list[torch.Tensor]:
        """Per example, the [count, D_T] unmapped teacher signal paired with student layer k (FitNet)."""
        if k not in self.teacher_rows:
            raise FileNotFoundError(f"no unmapped teacher signal for student layer {k} at {self.folder} "
                                    f"(teacher{k}.npy): targets written before FitNet existed; rerun teacher_targets")
        return [torch.from_numpy(np.array(self.teacher_rows[k][s])) for s in self._slices(examples, counts)]

    def topk(self, examples: Sequence[int], counts: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's stored top-k logits and ids, concatenated in example order: ([N, k], [N, k])."""
        slices = self._slices(examples, counts)
        values = np.concatenate([self.topk_values[s] for s in slices])  # a new, writable array
        ids = np.concatenate([self.topk_ids[s] for s in slices]).astype(np.int64)
        return torch.from_numpy(values), torch.from_numpy(ids)
