"""Tokens/s and model FLOP utilisation (MFU) of ONE training step of each transfer method at Llama-2-7B shapes.

What is measured, per method: the step the project trains with, built from the library. The method's own
``init_adapter`` (peft LoRA; Seeking's init from extracted factors; SemAlign's paired-layer LoRA and hooks; FitNet's
projector), then ``pkt.train``'s ``MethodTrainer.compute_loss`` replayed by hand (supervised_weight x the model's CE
+ the method's ``aux_loss``, the model forward under bf16 autocast as the Trainer's bf16=True does), backward,
clip-norm 1.0 and fused AdamW (the Trainer's defaults). Gradient checkpointing is switched on as the Trainer does
(after the peft wrap, non-reentrant), by default. Random weights (step time does not depend on them), random token
ids with the first quarter of each sequence masked as a prompt; SemAlign/KD/FitNet read random stored targets of the
right shapes through ``pkt.methods.semalign.store.Targets`` (mapped [N, 4096]; unmapped teacher [N, 5120], the 13B
width; top-32 logits). Their LoRA sits on one paired student layer (``--pair-layer``, default L/2 = 16) and the
backward only goes down to it, so their cost depends on that choice. ``laten`` is one step of
``pkt.methods.laten.translate.train_translator`` at full shapes (13B teacher + 7B student): locate (attribution of
one sequence in both models), translate, the injected student's LM loss on the minibatch, backward into the
translator, AdamW, OneCycle. The library runs that student in eval() without checkpointing; here it is checkpointed
by default (train(); Llama has no dropout) and the backward runs inside ``injected``, since a checkpointed recompute
cannot replay hooks that were already removed. Warm-up, then timed steps (synchronised; the median is reported);
peak memory = max_memory_allocated over the method.

FLOP accounting: model FLOPs; gradient-checkpointing recomputation is NOT counted (the MFU convention).
N = the weights that enter a matmul: every decoder block's q/k/v/o/gate/up/down projection and the LM head
(Llama-2-7B: 6.476e9 in the blocks + 0.131e9 head = 6.607e9); the input embedding (a lookup) and the RMSNorm
weights are excluded. T = tokens per step (micro-batch x seq), s = seq, L = layers, d = hidden width. Per step of
a LoRA-type method (base weights frozen):

    forward            2 N T + 2 L s d T         causal attention: QK^T and AV over the keys before each token
    backward, inputs   2 N_b T + 4 L_b s d T     activation gradients through the L_b layers from the loss down to
                                                 the lowest trainable layer (N_b: their matmul weights + LM head)
    backward, weights  0                         frozen base weights get no gradient
    adapters           6 N_lora T + 6 P T_sup    LoRA factors (forward, input and weight grads; lora_embedding_A
                                                 is a lookup, not counted); P = FitNet's projector, on T_sup rows

Elementwise work (norms, SiLU, softmax, the losses, the optimizer) is not counted. Beside it, the "6N" columns use
the conventional figure most reports quote, PaLM's 6 N T + 12 L s d T (every weight trained, non-causal attention).
LaTen adds its own work: per model, attribution = a forward on one sequence (2 N s + 2 L s^2 d) plus the log p
projections L (I + d + 4) 2 d V (fp32: the bulk of locate); the translator, (4 (D_T^2 + D_T D_S) + 2 D_T D_S) per
translated vector; the injection hooks, 6 T D_S per vector; its 6N column swaps only the student's LM part for
6 N T + 12 L s d T. LaTen's tokens = its minibatch x seq.

MFU = model FLOPs / step time / the GPU's dense bf16 peak (H100 SXM 989, H200 989, A100 312 TFLOP/s, found from
``torch.cuda.get_device_name()``; ``--peak-tflops`` overrides). On a GPU, the defaults are the 7B shapes, seq 1024,
micro-batch 8, LaTen minibatch 16 (config), checkpointing on, sdpa, 2 warm-up + 3 timed steps:

    python benchmarks/train_step_mfu.py [--methods lora,semalign] [--json mfu.json] [--no-grad-ckpt]

(any python with CUDA torch, transformers, peft, pyyaml: the script puts src/ on sys.path; a method that runs out of
memory gets an OOM row and the next one runs). About 3 minutes on an H100, most of it LaTen's fp32 locate.
CPU smoke check at tiny shapes (MFU n/a): ``python benchmarks/train_step_mfu.py --shapes tiny --device cpu``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import re
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # pkt without an install (a GPU image's python)
from pkt.methods import get_method  # noqa: E402

METHODS = ("lora", "seeking", "semalign", "kd", "fitnet", "laten")
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0))
PROMPT_FRACTION = 0.25  # the first quarter of each sequence is a masked prompt; the rest is supervised
SHAPE_KEYS = ("student", "teacher", "vocab", "seq", "batch", "warmup", "steps", "dtype")
SHAPES = {  # (hidden, layers, heads, intermediate) of student and teacher, then the SHAPE_KEYS after them
    "7b": ((4096, 32, 32, 11008), (5120, 40, 40, 13824), 32000, 1024, 8, 2, 3, "bfloat16"),
    "tiny": ((64, 2, 2, 256), (96, 4, 4, 256), 1500, 64, 2, 1, 1, "float32"),
}


def build(shape, vocab: int, seq: int, dtype: torch.dtype, device: torch.device, attn: str):
    """A random Llama of ``shape`` created directly on ``device`` in ``dtype`` (no CPU init, no download)."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    hidden, layers, heads, inter = shape
    sizes = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads)
    cfg = LlamaConfig(vocab_size=vocab, intermediate_size=inter, max_position_embeddings=max(4096, seq), **sizes)
    cfg.rms_norm_eps, cfg.tie_word_embeddings = 1e-5, False  # Llama-2's
    with torch.device(device):
        return AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=attn)


def matmul_params(model: nn.Module) -> tuple[int, int, int]:
    """(N, LM head, one decoder block): the weights of every nn.Linear (module docstring), before a peft wrap."""
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    head = model.get_output_embeddings().weight.numel()
    return n, head, (n - head) // model.config.num_hidden_layers


def checkpointing(model: nn.Module) -> None:
    """As the Trainer turns it on: after the peft wrap, non-reentrant (transformers 5's default, stated)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def make_batch(batch: int, seq: int, vocab: int) -> dict[str, torch.Tensor]:
    ids = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, : int(seq * PROMPT_FRACTION)] = -100
    return dict(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, example_index=torch.arange(batch))


def write_inputs(folder: Path, args, shapes) -> None:
    """Random stored teacher targets (``semalign.targets.write_targets``) and Seeking factors for layer 0's modules."""
    from pkt.methods.seeking.extract import save_factors
    from pkt.methods.semalign.store import token_digests, write_targets

    (h, _, _, inter), d_t, k = shapes["student"], shapes["teacher"][0], args.pair_layer
    n_sup = args.seq - int(args.seq * PROMPT_FRACTION)
    rows, rng = args.batch * n_sup, np.random.default_rng(0)
    computed = {"teacher_rows": {k: rng.standard_normal((rows, d_t), dtype=np.float32)}, "counts": [n_sup] * args.batch}
    computed["topk_values"] = rng.standard_normal((rows, 32), dtype=np.float32)
    computed["topk_ids"] = rng.integers(0, shapes["vocab"], (rows, 32))
    computed["offsets"] = [i * n_sup for i in range(args.batch)]
    batch = make_batch(args.batch, args.seq, shapes["vocab"])  # the batch every step trains on
    computed["digests"] = token_digests(batch["input_ids"], batch["attention_mask"])
    maps = {kind: torch.randn(h, d_t) / d_t**0.5 for kind in ("logit", "cosine")}  # random maps: timing only
    write_targets(folder, computed, {"pairs": [{"student": k, "sources": [[k, 1.0]]}], "signal": "delta"}, maps=maps)
    dims = {"self_attn.q_proj": (h, h), "self_attn.k_proj": (h, h), "self_attn.v_proj": (h, h)}
    dims |= {"self_attn.o_proj": (h, h), "mlp.gate_proj": (inter, h), "mlp.up_proj": (inter, h)}
    dims["mlp.down_proj"] = (h, inter)
    r, sd = args.rank, 0.01  # small random (B0, A0): Seeking subtracts alpha/r B0 A0 from W and starts its LoRA there
    factors = {f"model.layers.0.{m}": (sd * torch.randn(o, r), sd * torch.randn(r, i)) for m, (o, i) in dims.items()}
    save_factors(folder / "factors.safetensors", factors)


def settings(name: str, cfg: dict, args) -> dict:
    """The method's settings as the workflow resolves them from the config (pkt.config_checks.method_settings, for
    the config's first task), at the flags' r and alpha; SemAlign as v1, without its alignment phase."""
    from pkt.config_checks import method_settings

    task = cfg["evaluation"]["tasks"][0]
    lora = {**cfg["lora"], "r": args.rank, "alpha": args.alpha}
    resolved = method_settings({**cfg, "lora": lora}, name, [task])[task]
    return {**resolved, "variant": "v1", "align_steps": 0} if name == "semalign" else resolved


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(step, args, device) -> list[float]:
    """Run ``step`` warm-up + timed times; the timed steps' wall seconds (synchronised)."""
    times = []
    for i in range(args.warmup + args.steps):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return times


def lm_flops(tokens: int, seq: int, n: int, head: int, block: int, layers: int, l_b: int, d: int) -> int:
    """Forward + activation-gradient FLOPs of frozen base weights and causal attention (module docstring)."""
    return tokens * (2 * n + 2 * layers * seq * d + 2 * (l_b * block + head) + 4 * l_b * seq * d)


def lora_family(name: str, args, shapes, cfg, device, dtype, folder: Path) -> dict:
    """One training step of a Trainer-trained method (lora, seeking, semalign, kd, fitnet): times and FLOPs."""
    method = get_method(name).from_dict(settings(name, cfg, args), {"targets": folder, "extract": folder})
    model = build(shapes["student"], shapes["vocab"], args.seq, dtype, device, args.attn)
    n, head, block = matmul_params(model)
    model = method.init_adapter(model, None)
    if args.grad_ckpt:
        checkpointing(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, fused=device.type == "cuda")
    batch = make_batch(args.batch, args.seq, shapes["vocab"])
    autocast = partial(torch.autocast, "cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext

    def step():  # pkt.train.MethodTrainer.compute_loss, then the Trainer's backward, clipping and optimizer step
        inputs = {k: v.to(device) for k, v in batch.items()}
        extras = {k: inputs.pop(k) for k in method.extra_keys if k in inputs}
        inputs.pop("example_index", None)  # pkt.train adds it only for methods that read it
        with autocast():
            outputs = model(**inputs)
        loss = method.supervised_weight * outputs.loss
        aux = method.aux_loss(model, {**inputs, **extras}, outputs)
        if aux is not None:
            loss = loss + aux
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    times = timed(step, args, device)
    hidden, layers, seq, tokens = shapes["student"][0], shapes["student"][1], args.seq, args.batch * args.seq
    names = [x for x, p in model.named_parameters() if p.requires_grad]
    trained = [int(m.group(1)) for x in names if (m := re.search(r"layers\.(\d+)\.", x))]
    lowest = 0 if any("embed_tokens" in x for x in names) or not trained else min(trained)
    n_lora = sum(p.numel() for x, p in model.named_parameters() if "lora_" in x and "lora_embedding_A" not in x)
    proj = sum(p.numel() for x, p in model.named_parameters() if "fitnet_projectors" in x)
    t_sup = int((batch["labels"] != -100).sum())
    adapters = 6 * n_lora * tokens + 6 * proj * t_sup
    flops = lm_flops(tokens, seq, n, head, block, layers, layers - lowest, hidden) + adapters
    note = f"backward through {layers - lowest}/{layers} layers; {sum(p.numel() for p in params):,} trained params"
    flops_6n = tokens * (6 * n + 12 * layers * seq * hidden)
    return dict(tokens=tokens, times=times, flops=flops, flops_6n=flops_6n, note=note)


def attribution_flops(model: nn.Module, n: int, seq: int) -> int:
    """LaTen's locate in one model: a forward on one sequence + the fp32 log p projections (module docstring)."""
    c = model.config
    projections = c.num_hidden_layers * (c.intermediate_size + c.hidden_size + 4) * 2 * c.hidden_size * c.vocab_size
    return 2 * n * seq + 2 * c.num_hidden_layers * seq * seq * c.hidden_size + projections


def laten(args, shapes, cfg, device, dtype) -> dict:
    """One translator step of ``laten.translate.train_translator`` (its loop body, random ids instead of records)."""
    from pkt.config_checks import task_section
    from pkt.methods.laten.locate import attribute
    from pkt.methods.laten.translate import LatenSettings, Translator, injected, plan, teacher_vectors, unit_counts

    opts = LatenSettings(**task_section(cfg["laten"], cfg["evaluation"]["tasks"][0]))
    teacher = build(shapes["teacher"], shapes["vocab"], args.seq, dtype, device, args.attn).eval()
    student = build(shapes["student"], shapes["vocab"], args.seq, dtype, device, args.attn)
    n_t, (n, head, block) = matmul_params(teacher)[0], matmul_params(student)
    for p in [*teacher.parameters(), *student.parameters()]:
        p.requires_grad_(False)
    if args.grad_ckpt:  # HF checkpoints in train() only
        checkpointing(student)
    student.train(args.grad_ckpt)
    n_ffn, n_attn = unit_counts(student, opts.rate)
    d_t, d_s = teacher.config.hidden_size, student.config.hidden_size
    translator = Translator(d_t, d_s, opts.init_std).to(device)
    opt = torch.optim.AdamW(translator.parameters(), lr=opts.lr, betas=(0.9, 0.95), weight_decay=opts.weight_decay)
    total = args.warmup + args.steps
    kw = dict(pct_start=0.1, anneal_strategy="cos", final_div_factor=1.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opts.lr, total_steps=total, **kw)
    batch = {k: v.to(device) for k, v in make_batch(args.laten_batch, args.seq, shapes["vocab"]).items()}
    batch.pop("example_index")
    ids, target = batch["input_ids"][:1], 7  # the attribution input: one sequence and its target token
    located, found = [], {}

    def step():
        start = time.perf_counter()
        p = plan(attribute(teacher, ids, target), attribute(student, ids, target), n_ffn, n_attn)  # = locate()
        sync(device)
        located.append(time.perf_counter() - start)
        found["plan"] = p
        deltas = translator(teacher_vectors(teacher, p))
        with injected(student, p, deltas):
            lm_loss = student(**batch, use_cache=False).loss
            penalty = sum(d.pow(2).mean() for d in deltas.values())
            loss = lm_loss + opts.mse_weight * penalty
            _ = (lm_loss.item(), penalty.item(), float(sum(d.detach().pow(2).sum() for d in deltas.values())))  # log
            opt.zero_grad()
            loss.backward()  # inside the hooks (module docstring); the library calls it after the block
        opt.step()
        schedule.step()

    times = timed(step, args, device)
    p = found["plan"]
    vectors = sum(len(p.layers[k]) * p.student_units[k].shape[1] for k in p.layers)
    l_b = shapes["student"][1] - min(s for pairs in p.layers.values() for _, s in pairs)
    layers, seq, tokens = shapes["student"][1], args.seq, args.laten_batch * args.seq
    translate = vectors * (4 * (d_t * d_t + d_t * d_s) + 2 * d_t * d_s) + 6 * tokens * d_s * vectors
    extra = attribution_flops(teacher, n_t, seq) + attribution_flops(student, n, seq) + translate
    flops = extra + lm_flops(tokens, seq, n, head, block, layers, l_b, d_s)
    flops_6n = extra + tokens * (6 * n + 12 * layers * seq * d_s)
    note = f"locate {statistics.median(located[args.warmup :]):.3f}s of the step; teacher {shapes['teacher'][1]}x{d_t}"
    note += f", {vectors} vectors translated, backward through {l_b}/{layers} layers; tokens = minibatch x seq"
    return dict(tokens=tokens, times=times, flops=flops, flops_6n=flops_6n, note=note)


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override or device.type != "cuda":
        return override
    name = torch.cuda.get_device_name()
    return next((value for key, value in PEAK_TFLOPS if key in name), None)


def run(name: str, args, shapes, cfg, device, dtype, folder, peak) -> dict:
    """One method, with out-of-memory and other failures caught: a row either way; memory freed after it."""
    row = {"method": name}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        if name == "laten":
            res = laten(args, shapes, cfg, device, dtype)
        else:
            res = lora_family(name, args, shapes, cfg, device, dtype, folder)
    except torch.cuda.OutOfMemoryError:
        row["status"] = "OOM"
    except Exception as err:  # a one-shot run on a lent GPU: report and go on
        row["status"] = f"error: {type(err).__name__}: {str(err)[:200]}"
    else:
        secs = statistics.median(res["times"])
        row.update(status="ok", tokens=res["tokens"], step_s=secs, tokens_per_s=res["tokens"] / secs)
        row.update(tflops=res["flops"] / secs / 1e12, tflops_6n=res["flops_6n"] / secs / 1e12)
        row.update(mfu=row["tflops"] / peak if peak else None, mfu_6n=row["tflops_6n"] / peak if peak else None)
        row.update(step_times=res["times"], flops=res["flops"], flops_6n=res["flops_6n"], note=res["note"])
    if device.type == "cuda":
        row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def table(rows: list[dict]) -> str:
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    cols = f"{'method':<9}{'tokens':>8}{'step s':>9}{'tokens/s':>10}{'TFLOP/s':>9}{'MFU':>7}"
    head = cols + f"{'TFLOP/s 6N':>12}{'MFU 6N':>8}{'peak GiB':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        mem = f"{r['peak_gib']:.1f}" if "peak_gib" in r else "n/a"
        if r["status"] != "ok":
            lines.append(f"{r['method']:<9}{r['status']:>55}{mem:>10}")
            continue
        speed = f"{r['method']:<9}{r['tokens']:>8}{r['step_s']:>9.3f}{r['tokens_per_s']:>10.0f}"
        util = f"{r['tflops']:>9.3g}{pct(r['mfu']):>7}{r['tflops_6n']:>12.3g}{pct(r['mfu_6n']):>8}"
        lines.append(speed + util + f"{mem:>10}")
    return "\n".join(lines + [f"  {r['method']}: {r['note']}" for r in rows if r.get("note")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", choices=sorted(SHAPES), default="7b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--seq", type=int, help="sequence length (7b: 1024)")
    ap.add_argument("--batch", type=int, help="micro-batch of the LoRA-type methods (7b: 8)")
    ap.add_argument("--laten-batch", type=int, help="LaTen's minibatch (default: the config's laten.minibatch)")
    ap.add_argument("--warmup", type=int, help="warm-up steps (7b: 2)")
    ap.add_argument("--steps", type=int, help="timed steps (7b: 3)")
    ap.add_argument("--no-grad-ckpt", dest="grad_ckpt", action="store_false", help="gradient checkpointing off")
    ap.add_argument("--attn", default="sdpa", choices=("sdpa", "eager", "flash_attention_2"))
    ap.add_argument("--dtype", choices=("bfloat16", "float32"))
    ap.add_argument("--peak-tflops", type=float, help="dense peak of the GPU (default: from its name)")
    ap.add_argument("--pair-layer", type=int, help="SemAlign/FitNet paired student layer, 1-indexed (default L/2)")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=int, default=16)
    ap.add_argument(
        "--config",
        default=Path(__file__).resolve().parents[1] / "config/config.yaml",
        help="lora/semalign/kd/fitnet/laten settings",
    )
    ap.add_argument("--json", help="write the settings and rows here")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5's checkpointing renames, via peft
    shapes = dict(zip(SHAPE_KEYS, SHAPES[args.shapes]))
    cfg = yaml.safe_load(Path(args.config).read_text())
    for key in ("seq", "batch", "warmup", "steps", "dtype"):
        if getattr(args, key) is None:
            setattr(args, key, shapes[key])
    args.laten_batch = args.laten_batch or cfg["laten"]["minibatch"]
    args.pair_layer = args.pair_layer or max(1, shapes["student"][1] // 2)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if unknown := sorted(set(methods) - set(METHODS)):
        raise SystemExit(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU, or the smoke check `--shapes tiny --device cpu`")
    if args.attn == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise SystemExit("--attn flash_attention_2 needs the flash-attn package")
    dtype, peak = getattr(torch, args.dtype), peak_tflops(device, args.peak_tflops)
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    if device.type == "cuda" and peak is None:
        print(f"unknown dense bf16 peak for {gpu!r}: MFU n/a (pass --peak-tflops)")
    (h, layers, heads, inter), (h_t, l_t, _, _) = shapes["student"], shapes["teacher"]
    ckpt = "on" if args.grad_ckpt else "off"
    print(f"device {gpu}, peak {peak or 'n/a'} TFLOP/s; {args.dtype}, {args.attn}, gradient checkpointing {ckpt}")
    print(
        f"student {h}x{layers} ({heads} heads, FFN {inter}), teacher {h_t}x{l_t}, vocab {shapes['vocab']}; seq "
        f"{args.seq}, micro-batch {args.batch}, LaTen minibatch {args.laten_batch}; LoRA r {args.rank} alpha "
        f"{args.alpha}; paired student layer {args.pair_layer}; {args.warmup} warm-up + {args.steps} timed steps"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_inputs(Path(tmp), args, shapes)
        for name in methods:
            rows.append(run(name, args, shapes, cfg, device, dtype, Path(tmp), peak))
            r = rows[-1]  # a line per method as it ends, should the run be cut short
            done = f", {r['step_s']:.3f} s/step, {r['tflops']:.3g} TFLOP/s" if "step_s" in r else ""
            print(f"  {name}: {r['status']}{done}", flush=True)
    print(table(rows))
    if args.json:
        meta = {**vars(args), "config": str(args.config), "gpu": gpu, "peak_tflops": peak}
        Path(args.json).write_text(json.dumps({"settings": meta, "rows": rows}, indent=1))
        print(f"rows written to {args.json}")


if __name__ == "__main__":
    main()
