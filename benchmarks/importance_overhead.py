"""Overhead of ``pkt.layers.importance.layer_importance`` against a plain forward + backward pass.

Builds a small random Llama, then times, interleaved in one process, (a) ``model(**batch).loss.backward()``
over N batches and (b) ``layer_importance`` over the same batches, and prints both medians and their
ratio. Goal: ratio <= 1.3 (attribution should cost about one training step per batch).

    python benchmarks/importance_overhead.py --batches 4 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pkt.layers.importance import layer_importance


def build(args: argparse.Namespace) -> tuple[LlamaForCausalLM, list[dict[str, torch.Tensor]]]:
    torch.manual_seed(args.seed)
    cfg = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=max(256, args.seq_len),
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(args.seed)
    batches = []
    for _ in range(args.batches):
        ids = torch.randint(0, args.vocab, (args.batch_size, args.seq_len), generator=g)
        labels = ids.clone()
        labels[:, : args.seq_len // 4] = -100  # prompt part is not scored
        batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels})
    return model, batches


def plain_step(model: LlamaForCausalLM, batches: list[dict[str, torch.Tensor]]) -> float:
    start = time.perf_counter()
    for batch in batches:
        model(**batch, use_cache=False).loss.backward()
        model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def importance_step(model: LlamaForCausalLM, batches: list[dict[str, torch.Tensor]]) -> float:
    start = time.perf_counter()
    layer_importance(model, batches, "sum_abs", disable_progress=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batches", type=int, default=4, help="N batches per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, batches = build(args)
    plain_step(model, batches[:1])  # warm-up both paths
    importance_step(model, batches[:1])
    plain, attr = [], []
    for _ in range(args.repeats):
        plain.append(plain_step(model, batches))
        attr.append(importance_step(model, batches))
    p, a = statistics.median(plain), statistics.median(attr)
    print(
        f"model: hidden={args.hidden} layers={args.layers} vocab={args.vocab}; "
        f"{args.batches} batches of {args.batch_size}x{args.seq_len}; threads={args.threads}; "
        f"repeats={args.repeats}"
    )
    print(f"plain forward+backward : median {p:.3f} s  (all: {', '.join(f'{x:.3f}' for x in plain)})")
    print(f"layer_importance       : median {a:.3f} s  (all: {', '.join(f'{x:.3f}' for x in attr)})")
    print(f"ratio importance/plain : {a / p:.3f}  (goal <= 1.3) -> {'OK' if a / p <= 1.3 else 'OVER'}")


if __name__ == "__main__":
    main()
