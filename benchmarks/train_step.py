"""LoRA training step time and tokens/s on the toy student: the floor later methods are measured against.

Builds a student of the configured toy size (random weights: step time does not depend on them), then
measures side by side, in one process, interleaved over repeats: (a) a LoRA step through pkt.train's
Trainer subclass and (b) a full-parameter AdamW step of the same model on the same batches.

    python benchmarks/train_step.py [--config config/config.yaml] [--steps 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import yaml
from transformers import LlamaForCausalLM

from pkt.data.records import collate, encode_split
from pkt.data.tokenizer import train_tokenizer
from pkt.data.toyworld import generate
from pkt.methods import get_method
from pkt.models.build import llama_config


def batches(records, tok, batch_size, max_length, n):
    enc, _ = encode_split(records, tok, max_length)
    out = [collate(enc[i : i + batch_size], tok.pad_token_id) for i in range(0, len(enc) - batch_size + 1, batch_size)]
    return [out[i % len(out)] for i in range(n)]


def timed_steps(model, data, lr: float) -> tuple[float, int]:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    start = time.perf_counter()
    tokens = 0
    for batch in data:
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return time.perf_counter() - start, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.config) as f:
        cfg = yaml.safe_load(f)
    world = generate(cfg["world"])
    tok = train_tokenizer(world.corpora["teacher"] + world.corpora["student"], cfg["tokenizer"]["vocab_size"])
    arch = cfg["models"][cfg["pairs"][next(iter(cfg["pairs"]))]["student"]]
    max_length = min(cfg.get("max_length") or arch["max_position_embeddings"], arch["max_position_embeddings"])
    data = batches(world.splits["toy_gsm8k"]["train"], tok, cfg["train"]["batch_size"], max_length, args.steps)
    results: dict[str, list[tuple[float, int]]] = {"lora": [], "full": []}
    for _ in range(args.repeats):
        for kind in ("lora", "full"):
            torch.manual_seed(0)
            model = LlamaForCausalLM(llama_config(arch, tok))
            if kind == "lora":
                model = get_method("lora").from_dict(cfg["lora"]).init_adapter(model, tok)
            results[kind].append(timed_steps(model, data, cfg["train"]["lr"]))
    print(f"student {arch['hidden_size']}x{arch['num_layers']}, vocab {len(tok)}, batch {cfg['train']['batch_size']}, "
          f"{args.steps} steps x {args.repeats} repeats, {args.threads} threads")
    med = {}
    for kind, runs in results.items():
        secs = statistics.median(t for t, _ in runs)
        tokens = runs[0][1]
        med[kind] = secs
        print(f"{kind:>5}: {1000 * secs / args.steps:7.2f} ms/step  {tokens / secs:9.0f} tokens/s")
    print(f"ratio lora/full step time: {med['lora'] / med['full']:.2f}")


if __name__ == "__main__":
    main()
