"""LaTen (Neural Incompatibility, PrePKT): locate, align through a translator, inject (Tan et al., ACL 2025).

* **Locate** (:mod:`pkt.methods.laten.locate`): attribution on one example in teacher and student picks, per module
  kind, the top layers and the top ``rate`` share of units: FFN neurons (up_proj rows, down_proj columns) and
  attention dims (v_proj rows, o_proj columns). The i-th selected teacher layer pairs with the i-th student
  layer (the student keeps all its layers when it has no more than the teacher); teacher unit j's vectors
  go to the student's j-th best slot.
* **Align** (:class:`Translator`): one MLP per module kind, Linear(D_T, D_T) -> ReLU -> Linear(D_T, D_S),
  no bias, fp32, init N(0, ``init_std``), maps every teacher vector to a student vector. Trained by
  :func:`train_translator`: one step per extract example (units re-located at every step), on that example
  plus ``minibatch - 1`` align examples, loss = the student's LM loss with the translated deltas added
  + ``mse_weight`` x sum over kinds of MSE(delta, 0), AdamW (0.9, 0.95), OneCycle cosine over the whole extract
  split (one step per row, as the reference) of which the first ``steps`` run: the translator injected is the
  reference's after that many steps, at the same learning rates.
* **Inject**: the translated vectors are *added* at the student's slots. Training adds them with forward
  hooks (y = W x + dW x, :func:`injected`); the result is folded into the weights (:func:`fold`) and saved
  as a peft LoRA that gives exactly those weights on the vanilla student (:func:`delta_adapter`), so
  evaluation loads it like any other adapter. (The reference code set the delta as a plain attribute and
  very likely saved an unchanged student.)
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pkt.methods.laten.locate import Attribution, attribute, attribution_input, head_dim, top_layers, top_units

KINDS = ("up", "down", "v", "o")  # up_proj rows, down_proj columns, v_proj rows, o_proj columns
ROWS = {"up": True, "down": False, "v": True, "o": False}  # does the kind's unit index a weight row?
MODULES = {"up": ("mlp", "up_proj"), "down": ("mlp", "down_proj"), "v": ("self_attn", "v_proj"),
           "o": ("self_attn", "o_proj")}


@dataclass
class LatenSettings:
    """The ``laten`` config section (paper: rate 0.1, minibatch 16, mse 1000, wd 0.05, init 1e-5)."""

    rate: float = 0.1  # transfer rate: share of FFN neurons / attention dims per layer that get a delta
    steps: int = 4  # the translator injected: after this many steps of the len(extract) schedule (paper: 2-8)
    lr: float = 3e-4
    minibatch: int = 16  # P: the step's extract example + P - 1 align examples
    mse_weight: float = 1000.0
    weight_decay: float = 0.05
    init_std: float = 1e-5
    train_on_inputs: bool = False  # LM loss over the prompt too (README.md:56: MMLU); locate reads the same input

    def __post_init__(self) -> None:
        if not 0.0 < self.rate <= 1.0:
            raise ValueError(f"laten.rate must lie in (0, 1], got {self.rate}")
        if self.steps < 1 or self.minibatch < 1:
            raise ValueError("laten.steps and laten.minibatch must be >= 1")


@dataclass
class Plan:
    """Where deltas go: per kind, the paired (teacher layer, student layer) list and [P, n] unit indices."""

    layers: dict[str, list[tuple[int, int]]]
    teacher_units: dict[str, torch.Tensor]
    student_units: dict[str, torch.Tensor]

    def summary(self) -> dict[str, Any]:
        return {kind: {"pairs": self.layers[kind], "units": int(self.student_units[kind].shape[1])} for kind in KINDS}


def unit_counts(student: nn.Module, rate: float) -> tuple[int, int]:
    """(FFN neurons, attention dims) per layer at ``rate``: int(I rho) and int(H d_head rho) of the student."""
    cfg = student.config
    d_head = head_dim(cfg)
    n_ffn, n_attn = int(cfg.intermediate_size * rate), int(cfg.num_attention_heads * d_head * rate)
    if n_ffn < 1 or n_attn < 1:
        raise ValueError(f"laten.rate {rate} selects no unit of the student's {cfg.intermediate_size} FFN neurons "
                         f"or {cfg.num_attention_heads * d_head} attention dims per layer")
    return n_ffn, n_attn


def plan(teacher_scores: Attribution, student_scores: Attribution, n_ffn: int, n_attn: int) -> Plan:
    """Pair layers and units from both models' attribution of one example (module docstring)."""
    layers, t_units, s_units = {}, {}, {}
    for group, kinds, n in (("ffn", ("up", "down"), n_ffn), ("attn", ("v", "o"), n_attn)):
        t_layer_scores = getattr(teacher_scores, f"{group}_layers")
        s_layer_scores = getattr(student_scores, f"{group}_layers")
        pairs = min(t_layer_scores.numel(), s_layer_scores.numel())
        t_layers, s_layers = top_layers(t_layer_scores, pairs), top_layers(s_layer_scores, pairs)
        t_unit_scores = teacher_scores.ffn_neurons if group == "ffn" else teacher_scores.attn_dims
        s_unit_scores = student_scores.ffn_neurons if group == "ffn" else student_scores.attn_dims
        for kind in kinds:
            layers[kind] = list(zip(t_layers, s_layers))
            t_units[kind] = top_units(t_unit_scores, t_layers, n)
            s_units[kind] = top_units(s_unit_scores, s_layers, n)
    return Plan(layers, t_units, s_units)


def _module(model: nn.Module, layer: int, kind: str) -> nn.Linear:
    from pkt.layers.importance import decoder_layers

    parent, name = MODULES[kind]
    return getattr(getattr(decoder_layers(model)[layer], parent), name)


def _v_rows(model: nn.Module, dims: torch.Tensor) -> torch.Tensor:
    """v_proj rows feeding o_proj input dims (head h, dim j) -> (kv head of h, dim j); equal without GQA."""
    cfg = model.config
    d_head = head_dim(cfg)
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    return (dims // d_head) // group * d_head + dims % d_head


def _unit_index(model: nn.Module, kind: str, units: torch.Tensor) -> torch.Tensor:
    """The weight rows (up, v) or columns (down, o) a kind's units index."""
    return _v_rows(model, units) if kind == "v" else units


def teacher_vectors(teacher: nn.Module, p: Plan) -> dict[str, torch.Tensor]:
    """Per kind, [pairs, n, D_T]: the selected units' weight rows (up, v) or transposed columns (down, o)."""
    out = {}
    for kind in KINDS:
        stack = []
        for (t_layer, _), units in zip(p.layers[kind], p.teacher_units[kind]):
            weight = _module(teacher, t_layer, kind).weight.detach().float()
            index = _unit_index(teacher, kind, units).to(weight.device)
            stack.append(weight[index] if ROWS[kind] else weight[:, index].T)
        out[kind] = torch.stack(stack)
    return out


class Translator(nn.Module):
    """One bias-free MLP per kind, D_T -> D_T -> D_S, fp32, every weight N(0, init_std) (module docstring)."""

    def __init__(self, d_teacher: int, d_student: int, init_std: float = 1e-5) -> None:
        super().__init__()
        self.nets = nn.ModuleDict({kind: nn.Sequential(nn.Linear(d_teacher, d_teacher, bias=False), nn.ReLU(),
                                                       nn.Linear(d_teacher, d_student, bias=False))
                                   for kind in KINDS})
        for p in self.parameters():
            nn.init.normal_(p, std=init_std)

    def forward(self, vectors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {kind: self.nets[kind](vectors[kind].float()) for kind in KINDS}


def _add_delta(kind: str, index: torch.Tensor, delta: torch.Tensor):
    """A forward hook adding dW x, with dW zero except the ``index`` rows (up, v) or columns (down, o)."""
    def hook(_module, args, out):
        x = args[0]
        d = delta.to(out.dtype)
        if ROWS[kind]:
            return out.index_add(-1, index, x @ d.T)
        return out + x.index_select(-1, index) @ d

    return hook


@contextlib.contextmanager
def injected(student: nn.Module, p: Plan, deltas: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Inside the block the student computes y = W x + dW x at the plan's slots (gradients reach ``deltas``)."""
    handles = []
    try:
        for kind in KINDS:
            for (_, s_layer), units, delta in zip(p.layers[kind], p.student_units[kind], deltas[kind]):
                module = _module(student, s_layer, kind)
                index = _unit_index(student, kind, units).to(module.weight.device)
                handles.append(module.register_forward_hook(_add_delta(kind, index, delta)))
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def weight_deltas(student: nn.Module, p: Plan, deltas: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{module name: dW} of the plan: zero but for the translated vectors added at the slots."""
    names = {m: n for n, m in student.named_modules()}
    out: dict[str, torch.Tensor] = {}
    for kind in KINDS:
        for (_, s_layer), units, delta in zip(p.layers[kind], p.student_units[kind], deltas[kind]):
            module = _module(student, s_layer, kind)
            dw = out.setdefault(names[module], torch.zeros_like(module.weight, dtype=torch.float32))
            index = _unit_index(student, kind, units).to(dw.device)
            vectors = delta.detach().float()
            dw.index_add_(0 if ROWS[kind] else 1, index, vectors if ROWS[kind] else vectors.T)
    return out


@torch.no_grad()
def fold(student: nn.Module, dws: Mapping[str, torch.Tensor]) -> None:
    """W <- W + dW for every module of :func:`weight_deltas`: the injected student as plain weights."""
    modules = dict(student.named_modules())
    for name, dw in dws.items():
        modules[name].weight.add_(dw.to(modules[name].weight.dtype))


def _one_hot(index: torch.Tensor, size: int) -> torch.Tensor:
    """[size, n] with column j = e_index[j] (duplicates allowed: each column is its own unit)."""
    out = torch.zeros(size, index.numel())
    out[index.cpu(), torch.arange(index.numel())] = 1.0
    return out


def delta_adapter(student: nn.Module, p: Plan, deltas: Mapping[str, torch.Tensor]):
    """A peft LoRA whose B A equals the folded delta of every module (scale alpha / r = 1, no dropout).

    Rows (up, v): B = the slots' one-hot columns [out, n], A = the vectors [n, in]. Columns (down, o):
    B = the vectors transposed [out, n], A = the slots' one-hot rows [n, in]. Rank n per module kind.
    Returns the peft model wrapping ``student`` (changes it: unwrap or reload before reuse).
    """
    from peft import LoraConfig, get_peft_model

    ranks = {kind: int(p.student_units[kind].shape[1]) for kind in KINDS}
    modules = [MODULES[k][1] for k in KINDS]
    config = LoraConfig(r=ranks["up"], lora_alpha=ranks["up"], lora_dropout=0.0, target_modules=modules,
                        rank_pattern={MODULES[k][1]: ranks[k] for k in KINDS},
                        alpha_pattern={MODULES[k][1]: ranks[k] for k in KINDS}, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(student, config)
    with torch.no_grad():
        for _, module in model.named_modules():
            if hasattr(module, "lora_B") and "default" in module.lora_B:
                module.lora_B["default"].weight.zero_()
        for kind in KINDS:
            for (_, s_layer), units, delta in zip(p.layers[kind], p.student_units[kind], deltas[kind]):
                module = _module(model.get_base_model(), s_layer, kind)
                index = _unit_index(student, kind, units)
                a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
                if ROWS[kind]:
                    b.copy_(_one_hot(index, b.shape[0]).to(b))
                    a.copy_(delta.detach().to(a))
                else:
                    b.copy_(delta.detach().T.to(b))
                    a.copy_(_one_hot(index, a.shape[1]).T.to(a))
    return model


def locate(teacher: nn.Module, student: nn.Module, record: Mapping[str, Any], tokenizer, max_length: int,
           n_ffn: int, n_attn: int, *, train_on_inputs: bool = False) -> Plan:
    """Attribution of one record in both models (``train_on_inputs``: the task's setting, handed to
    :func:`~pkt.methods.laten.locate.attribution_input`), then :func:`plan`."""
    ids, target = attribution_input(record, tokenizer, max_length, train_on_inputs=train_on_inputs)
    return plan(attribute(teacher, ids, target), attribute(student, ids, target), n_ffn, n_attn)


def one_cycle(optimizer: torch.optim.Optimizer, lr: float, total_steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
    """The reference's schedule (train_LaTen.py:194-202): OneCycle to ``lr`` over ``total_steps`` = the extract
    split's rows, 10% warm-up, cosine, ending where it started (final_div_factor 1)."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps, pct_start=0.1,
                                               anneal_strategy="cos", final_div_factor=1.0)


def train_translator(teacher: nn.Module, student: nn.Module, tokenizer, extract: Sequence[Mapping[str, Any]],
                     align: Sequence[Mapping[str, Any]], settings: LatenSettings, seed: int, max_length: int
                     ) -> tuple[Translator, list[dict[str, float]]]:
    """LaTen step 2 (module docstring); returns the translator after ``settings.steps`` steps and a log per step.

    The schedule spans the whole extract split, one step per row (:func:`one_cycle`), and stops after
    ``settings.steps`` of them: the reference trains all ``len(extract)`` steps, saving the translator after each,
    and injects the chosen one (inference_LaTen.py:151-161), so the translator returned is the reference's at
    that step, trained at the same learning rates (squeezing the cycle into ``steps`` would not be). Step s uses
    extract example s, re-locates units in both models, and the mini-set of that example plus ``minibatch - 1``
    align examples drawn with ``random.Random(f"{seed}-{s}")`` (the reference draws with ``random.seed(s)``; the
    training seed is added so seeds differ). The mini-set is one padded batch; the LM loss is the token mean over
    its response tokens (every token with ``train_on_inputs``).
    """
    from tqdm.auto import tqdm

    from pkt.data.records import collate, encode_split, ensure_pad_token

    if settings.steps > len(extract):
        raise ValueError(f"laten.steps {settings.steps} exceeds the extract split's {len(extract)} rows: the schedule "
                         "spans the split, one step per row (train_LaTen.py:194-202)")
    for p in student.parameters():
        p.requires_grad_(False)
    n_ffn, n_attn = unit_counts(student, settings.rate)
    device = next(student.parameters()).device
    torch.manual_seed(seed)
    translator = Translator(teacher.config.hidden_size, student.config.hidden_size, settings.init_std).to(device)
    optimizer = torch.optim.AdamW(translator.parameters(), lr=settings.lr, betas=(0.9, 0.95),
                                  weight_decay=settings.weight_decay)
    schedule = one_cycle(optimizer, settings.lr, len(extract))
    pad = ensure_pad_token(tokenizer).pad_token_id
    student.eval()
    log = []
    for step in tqdm(range(settings.steps), desc="LaTen translator", leave=False):
        record = extract[step]
        p = locate(teacher, student, record, tokenizer, max_length, n_ffn, n_attn,
                   train_on_inputs=settings.train_on_inputs)
        rng = random.Random(f"{seed}-{step}")
        mini = [record, *rng.sample(list(align), min(settings.minibatch - 1, len(align)))]
        encoded, _ = encode_split(mini, tokenizer, max_length, trainer="laten",
                                  train_on_inputs=settings.train_on_inputs)
        batch = {k: v.to(device) for k, v in collate(encoded, pad).items()}
        deltas = translator(teacher_vectors(teacher, p))
        with injected(student, p, deltas):
            lm_loss = student(**batch, use_cache=False).loss
        penalty = sum(d.pow(2).mean() for d in deltas.values())
        loss = lm_loss + settings.mse_weight * penalty
        log.append({"step": step + 1, "lm_loss": lm_loss.item(), "penalty": penalty.item(),
                    "delta_norm": float(sum(d.detach().pow(2).sum() for d in deltas.values()) ** 0.5),
                    "lr": float(optimizer.param_groups[0]["lr"])})  # the deltas and lr of this step
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return translator, log
