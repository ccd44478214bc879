"""Seeking Neural Nuggets (Zhong et al., ICLR 2024): sensitivity-based extraction of teacher weights as LoRA.

The math of the ``seeking`` method (Zhong et al., ICLR 2024; maszhongming/ParaKnowTransfer), in five steps:

1. **Sensitivity** (:mod:`pkt.methods.seeking.sensitivity`): for every teacher weight, S(W) = sum_j |W * dL_j/dW|
   over k seed examples, L_j the causal-LM loss on example j's response tokens. The absolute value is taken per
   example, then summed (not the absolute value of the summed gradient: :func:`sensitivity` runs one
   example per backward pass). A per-parameter hook adds |W * grad| to an fp32 accumulator and frees the
   gradient at once, so memory stays near weights + one fp32 accumulator, whatever the model's dtype.
2. **Layer choice** (:func:`choose_layers`): the L_student teacher layers with the largest summed
   sensitivity, in their original order; the i-th kept layer becomes student layer i. The paper's
   ablations ``first``, ``last`` and ``random`` are options.
3. **Block search** (:func:`best_block`): in each kept matrix, the contiguous block of the student's shape
   with the largest summed sensitivity, every position at once from a float64 summed-area table (the
   reference loops over positions in Python). ``rowcol`` (top rows and columns by mean sensitivity) and
   ``random`` rows and columns are the paper's structure ablations (:func:`select`).
4. **Factorisation** (:func:`lora_factors`): a rank-r SVD of each block, B = U_r diag(S_r), A = Vh_r,
   in peft's layouts (an embedding's A is [r, V] and its B is [d, r]).
5. **The delta trick** (:func:`start_factors`, :func:`subtract_delta`, :func:`stack_adapter`): the LoRA starts
   from (B, A) / sqrt(s) (s = alpha / r), so that its delta s B A is the extracted rank-r block whatever alpha
   (the reference runs alpha = r, s = 1; PiSSA scales the same way), and the student's base weights become
   W - B A, so the student computes exactly what it did before at step 0; the teacher's weights only set where
   LoRA training starts. With (B0, A0) the scaled factors, the trained model W - s B0 A0 + s B' A' is saved as
   a standard LoRA of rank 2r on the vanilla student: B = [B', -B0], A = [A'; A0], alpha doubled (s unchanged).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from pkt.methods.seeking.sensitivity import accumulator_device, sensitivity  # noqa: F401 - step 1, re-exported

LAYER_CHOICES = ("sensitivity", "first", "last", "random")
STRUCTURES = ("submatrix", "rowcol", "random")
GROUPS = {  # module groups of the module-origin ablation; "norm" is scored but never transferred
    "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "ffn": ("gate_proj", "up_proj", "down_proj"),
    "embedding": ("embed_tokens", "lm_head"),
}
SCORE_GROUPS = ("attention", "ffn", "norm")
LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass(frozen=True)
class Selection:
    """Which rows and columns of a teacher matrix make the student-shaped block."""

    rows: torch.Tensor  # 1-D LongTensor, increasing
    cols: torch.Tensor
    offset: tuple[int, int] | None  # (row, column) of a contiguous block; None for rowcol / random
    share: float  # the block's share of the matrix's summed sensitivity

    def take(self, weight: torch.Tensor) -> torch.Tensor:
        if self.offset is not None:
            (i, j), (n, m) = self.offset, (len(self.rows), len(self.cols))
            return weight[i : i + n, j : j + m]
        return weight.index_select(0, self.rows.to(weight.device)).index_select(1, self.cols.to(weight.device))


def layer_of(name: str) -> int | None:
    """0-indexed decoder layer of a parameter name (``model.layers.3.mlp.up_proj.weight`` -> 3), or None."""
    found = LAYER.search(name)
    return int(found.group(1)) if found else None


def rename_layer(name: str, layer: int) -> str:
    """``name`` with its decoder-layer index replaced (teacher layer -> student layer)."""
    return LAYER.sub(lambda m: m.group(0).replace(f"layers.{m.group(1)}.", f"layers.{layer}."), name, count=1)


def group_of(name: str) -> str:
    """Module group of a parameter name: attention, ffn, embedding or norm."""
    for group, modules in GROUPS.items():
        if any(f"{m}." in name or name.endswith(m) for m in modules):
            return group
    return "norm"


def layer_scores(sens: Mapping[str, torch.Tensor], n_layers: int) -> tuple[list[float], list[dict[str, float]]]:
    """Summed sensitivity per decoder layer (index 0 = layer 1) and per layer x group (attention/ffn/norm)."""
    totals = [0.0] * n_layers
    groups = [dict.fromkeys(SCORE_GROUPS, 0.0) for _ in range(n_layers)]
    for name, s in sens.items():
        layer = layer_of(name)
        if layer is None:
            continue
        value = float(s.double().sum())
        totals[layer] += value
        groups[layer][group_of(name)] += value
    return totals, groups


# ---------------------------------------------------------------------------------------- layer choice --
def choose_layers(scores: list[float], n_student: int, how: str = "sensitivity", seed: int = 0) -> list[int]:
    """The kept teacher layers (1-indexed, increasing); the i-th maps to student layer i."""
    from pkt.layers.pairing import seeking_top_layers

    n_teacher = len(scores)
    if not 1 <= n_student <= n_teacher:
        raise ValueError(f"Seeking keeps L_S={n_student} of L_T={n_teacher} teacher layers; needs 1 <= L_S <= L_T")
    if how == "sensitivity":
        return seeking_top_layers(scores, n_student)
    if how == "first":
        return list(range(1, n_student + 1))
    if how == "last":
        return list(range(n_teacher - n_student + 1, n_teacher + 1))
    if how == "random":
        return sorted(random.Random(seed).sample(range(1, n_teacher + 1), n_student))
    raise ValueError(f"seeking.layers must be one of {LAYER_CHOICES}, got {how!r}")


# ---------------------------------------------------------------------------------------- block search --
def best_block(sens: torch.Tensor, shape: tuple[int, int], max_elements: int = 1 << 24) -> tuple[int, int, float]:
    """(row, column, sum) of the contiguous ``shape`` block of ``sens`` with the largest sum.

    Every window sum comes from a float64 summed-area table P (P[i, j] = sum of sens[:i, :j]) as
    P[i+n, j+m] - P[i, j+m] - P[i+n, j] + P[i, j], all positions at once. The table is built in chunks of
    output rows (each chunk needs P's rows i and i+n only), so temporaries stay near ``max_elements``
    float64 values however large the matrix. Ties go to the first position in row-major order, as a
    row-then-column loop finds it (``argmax`` returns the first maximum; later chunks must be larger).
    """
    if sens.dim() != 2:
        raise ValueError(f"block search needs a matrix, got shape {tuple(sens.shape)}")
    (big_n, big_m), (n, m) = sens.shape, shape
    if not (1 <= n <= big_n and 1 <= m <= big_m):
        raise ValueError(f"block {shape} does not fit in a {tuple(sens.shape)} matrix")
    positions = big_n - n + 1
    chunk = max(1, max_elements // (big_m + 1))
    top = torch.zeros(big_m, dtype=torch.float64, device=sens.device)  # P's row i before the column cumsum
    bottom = _column_sums(sens, 0, n, chunk)  # the same for row i + n
    best = (-math.inf, 0, 0)
    for a in range(0, positions, chunk):
        b = min(a + chunk, positions)
        upper = _prefix_rows(sens, a, b - a, top)
        strips = _prefix_rows(sens, a + n, b - a, bottom)
        if b < positions:  # the next chunk's first rows, before the in-place steps below
            top = upper[-1] + sens[b - 1]
            bottom = strips[-1] + sens[b + n - 1]
        strips.sub_(upper).cumsum_(1)  # [rows, M]: row sums of P[i+n] - P[i] up to each column
        windows = strips[:, m - 1 :].clone()  # sum over columns j..j+m-1 = cum[j+m-1] - cum[j-1]
        windows[:, 1:] -= strips[:, : big_m - m]
        flat = int(torch.argmax(windows))
        value = float(windows.flatten()[flat])
        if value > best[0]:
            best = (value, a + flat // windows.shape[1], flat % windows.shape[1])
    return best[1], best[2], best[0]


def _column_sums(sens: torch.Tensor, start: int, stop: int, chunk: int) -> torch.Tensor:
    """sum of sens[start:stop] over rows in float64, ``chunk`` rows at a time."""
    total = torch.zeros(sens.shape[1], dtype=torch.float64, device=sens.device)
    for a in range(start, stop, chunk):
        total += sens[a : min(a + chunk, stop)].sum(0, dtype=torch.float64)
    return total


def _prefix_rows(sens: torch.Tensor, start: int, count: int, base: torch.Tensor) -> torch.Tensor:
    """Column sums of sens[:r] for r = start .. start+count-1 (float64), given ``base`` = those of sens[:start]."""
    out = torch.empty(count, sens.shape[1], dtype=torch.float64, device=sens.device)
    out[0] = base
    if count > 1:
        torch.cumsum(sens[start : start + count - 1], 0, dtype=torch.float64, out=out[1:])
        out[1:] += base
    return out


def brute_force_block(sens: torch.Tensor, shape: tuple[int, int]) -> tuple[int, int, float]:
    """The reference's loop over every position (for tests and the benchmark): first maximum wins."""
    n, m = shape
    s = sens.double()
    best = (-math.inf, 0, 0)
    for i in range(s.shape[0] - n + 1):
        for j in range(s.shape[1] - m + 1):
            value = float(s[i : i + n, j : j + m].sum())
            if value > best[0]:
                best = (value, i, j)
    return best[1], best[2], best[0]


def select(sens: torch.Tensor, shape: tuple[int, int], structure: str = "submatrix", seed: str = "0") -> Selection:
    """The rows and columns of the student-shaped block, by ``structure`` (module docstring, step 3)."""
    total = float(sens.double().sum())
    n, m = shape
    if structure == "submatrix":
        i, j, value = best_block(sens, shape)
        rows, cols = torch.arange(i, i + n), torch.arange(j, j + m)
        return Selection(rows, cols, (i, j), value / total if total else 0.0)
    if structure == "rowcol":  # top rows/columns by mean sensitivity, ties to the lower index, kept in order
        rows = torch.sort(torch.sort(-sens.double().mean(1), stable=True).indices[:n]).values
        cols = torch.sort(torch.sort(-sens.double().mean(0), stable=True).indices[:m]).values
    elif structure == "random":
        rng = random.Random(seed)
        rows = torch.tensor(sorted(rng.sample(range(sens.shape[0]), n)))
        cols = torch.tensor(sorted(rng.sample(range(sens.shape[1]), m)))
    else:
        raise ValueError(f"seeking.structure must be one of {STRUCTURES}, got {structure!r}")
    value = float(sens.double().index_select(0, rows).index_select(1, cols).sum())
    return Selection(rows, cols, None, value / total if total else 0.0)


# ------------------------------------------------------------------------------------------ factorisation --
def lora_factors(block: torch.Tensor, rank: int, embedding: bool = False) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(B, A, energy): the best rank-r approximation B @ A of ``block`` by a full fp32 SVD.

    B = U_r diag(S_r), A = Vh_r; energy = the share of sum(S^2) kept. For an embedding (``block`` in HF
    layout [V, d]) the factors are peft's: A [r, V] and B [d, r], i.e. B @ A approximates block.T.
    """
    matrix = block.float().T if embedding else block.float()
    if not 1 <= rank <= min(matrix.shape):
        raise ValueError(f"LoRA rank {rank} does not fit a {tuple(matrix.shape)} block")
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    energy = float((s[:rank] ** 2).sum() / (s**2).sum()) if float(s.sum()) else 1.0
    return (u[:, :rank] * s[:rank]).contiguous(), vh[:rank].contiguous(), energy


def delta_weight(b: torch.Tensor, a: torch.Tensor, embedding: bool = False) -> torch.Tensor:
    """B @ A in the module's weight layout ([out, in]; an embedding's [V, d])."""
    product = b @ a
    return product.T if embedding else product


# -------------------------------------------------------------------------------------- delta bookkeeping --
def start_factors(factors: Mapping[str, tuple[torch.Tensor, torch.Tensor]], scale: float
                  ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module: (B / sqrt(scale), A / sqrt(scale))}: the LoRA's starting factors, whose delta scale * B A (peft's
    scaling = alpha / r) equals the extracted rank-r block B @ A for any alpha. Both factors get the same root,
    as PiSSA does, so that neither starts larger than the other. The reference's alpha = r (scale 1) leaves them
    as extracted; at r 8, alpha 16 (the toy config) unscaled factors would start the LoRA at twice the block."""
    root = math.sqrt(scale)
    return {name: (b / root, a / root) for name, (b, a) in factors.items()}


@torch.no_grad()
def subtract_delta(model: nn.Module, factors: Mapping[str, tuple[torch.Tensor, torch.Tensor]], scale: float) -> None:
    """W <- W - scale * B @ A for every module named in ``factors`` (computed in fp32), in place."""
    modules = dict(model.named_modules())
    for name, (b, a) in factors.items():
        if name not in modules:
            raise KeyError(f"the student has no module {name!r} to receive extracted weights")
        weight = modules[name].weight
        delta = delta_weight(b.float(), a.float(), isinstance(modules[name], nn.Embedding))
        if delta.shape != weight.shape:
            raise ValueError(f"{name}: extracted delta {tuple(delta.shape)} != weight {tuple(weight.shape)}")
        weight.copy_((weight.float() - scale * delta.to(weight.device)).to(weight.dtype))


Factors = Mapping[str, tuple[torch.Tensor, torch.Tensor]]  # {module: (B, A)}


def stack_adapter(trained: Factors, initial: Factors) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module: (B, A)} of rank 2r whose B @ A = B' A' - B0 A0: the trained model on the vanilla student.

    ``trained`` holds (B', A') of every adapted module; ``initial`` the extracted (B0, A0) that were
    subtracted from the base weights (modules without one started from the standard init: zeros).
    """
    stacked = {}
    for name, (b, a) in trained.items():
        b0, a0 = initial.get(name, (torch.zeros_like(b), torch.zeros_like(a)))
        stacked[name] = (torch.cat([b, -b0.to(b)], dim=1), torch.cat([a, a0.to(a)], dim=0))
    return stacked


# ------------------------------------------------------------------------------------------ extraction --
@dataclass(frozen=True)
class ExtractSettings:
    """The ``seeking`` config section: how many seeds, and the paper's three ablation switches."""

    k: int | None = None  # seed examples per task (paper: 32); None = the whole extract split
    layers: str = "sensitivity"  # sensitivity | first | last | random
    structure: str = "submatrix"  # submatrix | rowcol | random
    modules: tuple[str, ...] = ("attention", "ffn", "embedding")  # module groups transferred
    seed: int = 0  # of the random ablations

    def __post_init__(self) -> None:
        checks = {"layers": (self.layers, LAYER_CHOICES), "structure": (self.structure, STRUCTURES)}
        for key, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"seeking.{key} must be one of {allowed}, got {value!r}")
        unknown = sorted(set(self.modules) - set(GROUPS))
        if unknown or not self.modules:
            raise ValueError(f"seeking.modules must be a non-empty subset of {sorted(GROUPS)}, "
                             f"got {list(self.modules)}")
        if self.k is not None and self.k < 1:
            raise ValueError(f"seeking.k must be >= 1 or null (the whole extract split), got {self.k}")


def extract(teacher: Mapping[str, torch.Tensor], sens: Mapping[str, torch.Tensor],
            student_shapes: Mapping[str, tuple[int, ...]], n_teacher: int, n_student: int, rank: int,
            settings: ExtractSettings) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], dict]:
    """LoRA factors {student module: (B, A)} cut from the teacher, and the record of every choice made.

    ``teacher`` and ``sens`` are keyed by teacher parameter name, ``student_shapes`` by student parameter
    name. Norm weights and biases are never transferred (the reference does not).
    """
    scores, by_group = layer_scores(sens, n_teacher)
    kept = choose_layers(scores, n_student, settings.layers, settings.seed)
    rename = {t - 1: s for s, t in enumerate(kept)}  # 0-indexed teacher layer -> 0-indexed student layer
    factors, matrices = {}, []
    for name, weight in teacher.items():
        group, layer = group_of(name), layer_of(name)
        if group not in settings.modules or not name.endswith(".weight") or (layer is not None and layer not in rename):
            continue
        target = name if layer is None else rename_layer(name, rename[layer])
        if target not in student_shapes:
            raise KeyError(f"teacher parameter {name} maps to {target}, which the student does not have")
        shape, weight_sens = tuple(student_shapes[target]), sens[name]
        if group == "embedding" and len(shape) == 2 and weight.shape[0] > shape[0]:
            # tokens the teacher appended (WizardCoder's [PAD], id 32,000) have no student row: the shared ids
            weight, weight_sens = weight[: shape[0]], weight_sens[: shape[0]]
        if len(shape) != 2 or (group == "embedding" and shape[0] != weight.shape[0]):
            raise ValueError(f"{name}: cannot cut a {shape} block from {tuple(weight.shape)} (vocabularies differ?)")
        chosen = select(weight_sens, shape, settings.structure, seed=f"{settings.seed}:{name}")
        b, a, energy = lora_factors(chosen.take(weight.detach()), rank, embedding="embed_tokens" in name)
        module = target.removesuffix(".weight")
        factors[module] = (b, a)
        matrices.append({"teacher": name, "student": module, "group": group, "shape": list(shape),
                         "teacher_rows": int(teacher[name].shape[0]),
                         "offset": list(chosen.offset) if chosen.offset else None,
                         "share": chosen.share, "energy": energy})
    record = {
        "layer_scores": scores,  # [i] = teacher layer i + 1
        "group_scores": by_group,
        "other_scores": {n: float(s.double().sum()) for n, s in sens.items() if layer_of(n) is None},
        "kept_layers": kept,
        "student_layers": list(range(1, n_student + 1)),
        "layer_index_base": 1,
        "matrices": matrices,
        "rank": rank,
    }
    return factors, record


def save_factors(path, factors: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """{module: (B, A)} -> one safetensors file (``<module>.lora_B``, ``<module>.lora_A``)."""
    from safetensors.torch import save_file

    tensors = {}
    for module, (b, a) in factors.items():
        tensors[f"{module}.lora_B"], tensors[f"{module}.lora_A"] = b.contiguous(), a.contiguous()
    save_file(tensors, str(path))


def load_factors(path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The inverse of :func:`save_factors`."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    modules = sorted({key.rsplit(".", 1)[0] for key in tensors})
    return {m: (tensors[f"{m}.lora_B"], tensors[f"{m}.lora_A"]) for m in modules}


def seed_examples(records: list[dict], tokenizer, k: int | None, max_length: int) -> tuple[list[dict], dict]:
    """The first k records of the extract split, one [1, T] example each (prompt masked), and the length rule."""
    from pkt.data.records import supervised_batches

    chosen = records if k is None else records[:k]
    if k is not None and len(records) < k:
        raise ValueError(f"seeking.k = {k} but the extract split has {len(records)} examples")
    return supervised_batches(chosen, tokenizer, 1, max_length)


def student_shapes(student_dir) -> tuple[dict[str, tuple[int, ...]], int]:
    """Parameter shapes and depth of a saved student, built on the meta device (no weights are read). A tied
    LM head is listed under its own name too: an untied teacher's head has a place to go (the ``seeking``
    method unties the student's head before the delta trick)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(student_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return {n: tuple(p.shape) for n, p in model.named_parameters(remove_duplicate=False)}, config.num_hidden_layers
