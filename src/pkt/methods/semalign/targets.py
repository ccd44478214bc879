"""SemAlign's teacher targets, computed once and stored, so that training never loads the teacher.

The ``teacher_targets`` rule runs the teacher over a task's train split (the same examples, tokens and
length rule as training: :func:`pkt.data.records.encode_split`), takes the signal of each trained pair's teacher
layer at every position that predicts a supervised (response) token, interpolates between two teacher layers
where the pairing says so, and keeps the teacher's top-k next-token logits at the same positions: the layer
term and the output term score one set of positions. The signal is stored unmapped, with both coefficient
rules' matrices (:func:`student_maps`, :mod:`pkt.methods.semalign.bases`): training maps it into the
student's space with ``semalign.map``, so either map reads the same targets. :func:`target_batches` yields
the rows batch by batch; :func:`write_task_targets` streams them into a task folder
(:mod:`pkt.methods.semalign.store`: the files, their precision, and :class:`Targets`, which reads them back).
:func:`plan_targets` counts the rows and bytes from the tokenised splits alone, so a job that would fill the
disk is refused before the teacher is loaded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pkt.layers.importance import IGNORE_INDEX, decoder_layers, hidden_state, layer_input, predicting_positions
from pkt.layers.pairing import interpolation
from pkt.methods.semalign.bases import MAPS, map_matrices, shared_vocab_size
from pkt.methods.semalign.store import DTYPES, TargetWriter, row_bytes, save_maps, supervised_rows, token_digests

SIGNALS = ("delta", "output")
TARGET_FIELDS = ("pairs", "signal", "interpolate", "topk", "targets_dtype")  # semalign keys deciding targets
PAIRS = ("critical", "all")


@dataclass(frozen=True)
class TargetSettings:
    """The ``semalign`` settings that decide the targets (the rest decide training)."""

    pairs: str = "critical"  # critical: the pairing's (l_T(k†), k†); all: every pair of the depth map
    signal: str = "delta"  # delta: the layer's residual contribution h_l - h_(l-1); output: h_l
    interpolate: bool = True  # (1 - lambda) h^(a) + lambda h^(b) where the depth ratio is not integral
    topk: int = 32  # teacher logits kept per position for the KL term
    targets_dtype: str = "float16"  # rows on disk (pkt.methods.semalign.store)

    def __post_init__(self) -> None:
        if self.pairs not in PAIRS:
            raise ValueError(f"semalign.pairs must be one of {PAIRS}, got {self.pairs!r}")
        if self.signal not in SIGNALS:
            raise ValueError(f"semalign.signal must be one of {SIGNALS}, got {self.signal!r}")
        if self.topk < 1:
            raise ValueError(f"semalign.topk must be >= 1, got {self.topk}")
        if self.targets_dtype not in DTYPES:
            raise ValueError(f"semalign.targets_dtype must be one of {DTYPES}, got {self.targets_dtype!r}")


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
def target_batches(teacher: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]],
                   pairs: Sequence[Mapping[str, Any]], signal: str, topk: int,
                   vocab: int | None = None) -> Iterator[dict[str, Any]]:
    """Run the teacher over ``batches`` (padded, in split order), yielding each batch's float32 rows at the
    positions that predict its supervised tokens: per pair the teacher signal (``teacher_rows``), the top-k
    logits and ids, the per-example counts of supervised positions and digests of the token ids.

    The top-k logits are taken over the first ``vocab`` ids (the vocabulary shared with the student, default
    all): a teacher that appended a token (WizardCoder's [PAD], id 32,000) must not hand the student an id
    outside its head."""
    layers = sorted({t - 1 for p in pairs for t, _ in p["sources"]})
    teacher.eval()
    device = next(teacher.parameters()).device
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        signals, out = layer_signals(teacher, batch, layers, signal)
        mask = batch["labels"] != IGNORE_INDEX  # supervised tokens: the response
        prev = predicting_positions(mask)  # the positions that predict them: both terms are scored there
        if not torch.equal(prev.sum(1), mask.sum(1)):
            raise ValueError("a supervised token at position 0 has no logits before it: the prompt must come first")
        part: dict[str, Any] = {"teacher_rows": {}, "counts": mask.sum(1).tolist(),
                                "digests": token_digests(batch["input_ids"], batch["attention_mask"])}
        for p in pairs:
            mixed = sum(w * signals[t - 1].float() for t, w in p["sources"])[prev]
            part["teacher_rows"][p["student"]] = mixed.cpu().numpy()
        logits = out.logits[prev][:, :vocab]
        top = logits.float().topk(min(topk, logits.shape[-1]), dim=-1)
        part["topk_values"] = top.values.cpu().numpy()
        part["topk_ids"] = top.indices.to(torch.int32).cpu().numpy()
        yield part


def compute_targets(teacher: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]],
                    pairs: Sequence[Mapping[str, Any]], signal: str, topk: int,
                    vocab: int | None = None) -> dict[str, Any]:
    """:func:`target_batches` gathered in memory (tests, benchmarks; a job streams them to disk instead)."""
    parts = list(target_batches(teacher, batches, pairs, signal, topk, vocab))
    counts = [n for part in parts for n in part["counts"]]
    return {"teacher_rows": {k: np.concatenate([part["teacher_rows"][k] for part in parts])
                             for k in parts[0]["teacher_rows"]},
            "topk_values": np.concatenate([part["topk_values"] for part in parts]),
            "topk_ids": np.concatenate([part["topk_ids"] for part in parts]), "counts": counts,
            "offsets": np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist(),
            "digests": [d for part in parts for d in part["digests"]]}


def student_maps(teacher: nn.Module, student_dir: str | os.PathLike[str], names: Sequence[str],
                 shared_vocab_only: bool) -> tuple[dict[str, torch.Tensor], int]:
    """{rule: [D_S, D_T] matrix} for every coefficient rule (:data:`~pkt.methods.semalign.bases.MAPS`), from the
    teacher's LM head and the saved student's (no student model is built; a tied student's head is its input
    embedding), computed on the teacher's device; and the size of the vocabulary they are aligned over."""
    from pkt.models.build import load_output_head

    head_t = teacher.get_output_embeddings().weight.detach()
    head_s = load_output_head(student_dir).to(head_t.device)
    m = shared_vocab_size(head_t.shape[0], head_s.shape[0], *names, shared_vocab_only)
    return {kind: matrix.cpu() for kind, matrix in map_matrices(head_s[:m], head_t[:m]).items()}, m


def plan_targets(tokenizer, splits: Mapping[str, str | os.PathLike[str]], batch_size: int, max_length: int
                 ) -> dict[str, dict[str, Any]]:
    """{split name: {"split", "batches", "length_rule", "rows"}}: one task's splits tokenised and batched as the
    teacher will see them, with the rows their targets take (the size is known before the teacher runs)."""
    from pkt.data.records import load_split, supervised_batches

    plans = {}
    for name, split in splits.items():
        batches, length_rule = supervised_batches(load_split(split), tokenizer, batch_size, max_length)
        plans[name] = {"split": str(split), "batches": batches, "length_rule": length_rule,
                       "rows": supervised_rows(batches)}
    return plans


def planned_bytes(plans: Mapping[str, Mapping[str, Any]], n_pairs: int, d_student: int, d_teacher: int,
                  topk: int, dtype: str) -> int:
    """Disk the targets of :func:`plan_targets`' splits take, ``n_pairs`` trained pairs each, and the maps."""
    widths = dict.fromkeys(range(n_pairs), d_teacher)
    maps = len(MAPS) * d_student * d_teacher * 4
    return sum(plan["rows"] for plan in plans.values()) * row_bytes(widths, topk, dtype) + maps


def check_disk(pair: str, plans: Mapping[str, Mapping[str, Mapping[str, Any]]],
               pairs: Mapping[str, Sequence[Mapping[str, Any]]], d_student: int, d_teacher: int, topk: int,
               dtype: str, max_gb: float) -> tuple[int, int]:
    """(response tokens, bytes) of a pair's targets over every task ({task: plans}, {task: trained pairs});
    a ValueError naming ``semalign.targets_max_gb`` when the bytes exceed it."""
    rows = sum(plan["rows"] for by_split in plans.values() for plan in by_split.values())
    total = sum(planned_bytes(plans[task], len(pairs[task]), d_student, d_teacher, topk, dtype) for task in plans)
    if total > max_gb * 1e9:
        raise ValueError(f"the targets of pair {pair} would take {total / 1e9:.1f} GB ({rows} response tokens, "
                         f"{max(len(p) for p in pairs.values())} layer pair(s), {dtype}), over "
                         f"semalign.targets_max_gb {max_gb}: raise it, or align fewer pairs (semalign.pairs: critical)")
    return rows, total


def write_task_targets(folder: Path, teacher: nn.Module, plans: Mapping[str, Mapping[str, Any]],
                       pairs: Sequence[Mapping[str, Any]], maps: Mapping[str, torch.Tensor], settings: TargetSettings,
                       meta: Mapping[str, Any], vocab: int | None = None) -> None:
    """One task's targets, streamed to disk: the train split's into ``folder`` with the ``maps``
    (:func:`student_maps`), the align split's (v1's alignment phase) into ``folder/align``; ``plans`` from
    :func:`plan_targets` over {"train": path, "align": path}. The caller makes ``folder`` atomic."""
    head = teacher.get_output_embeddings().weight
    widths = {p["student"]: head.shape[1] for p in pairs}  # D_T per aligned pair
    width = min(settings.topk, vocab or head.shape[0])
    for name, plan in plans.items():
        start = time.perf_counter()
        out = folder if name == "train" else folder / name
        writer = TargetWriter(out, plan["rows"], widths, width, settings.targets_dtype)
        for part in target_batches(teacher, plan["batches"], pairs, settings.signal, settings.topk, vocab):
            writer.add(part)
        writer.close({**meta, "split": plan["split"], "pairs": pairs, "signal": settings.signal,
                      "topk": settings.topk, "length_rule": plan["length_rule"], "positions": "predicting",
                      "wall_s": round(time.perf_counter() - start, 2)})
    save_maps(folder, maps)
