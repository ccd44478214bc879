"""Seeking's extraction, side by side in one run: block search and sensitivity pass against the plain ways.

1. Block search at 1024 x 1024 -> 768 x 768 (257 x 257 positions): :func:`pkt.methods.seeking.extract.best_block` (every
   window from a float64 summed-area table at once) against the reference's loop, which builds the same
   table and visits every position in Python with four lookups each. Both must return the same block.
2. Sensitivity over k seed examples: :func:`pkt.methods.seeking.extract.sensitivity` (per-parameter hooks that add
   |W * grad| to an fp32 accumulator and free the gradient) against k plain forward + backward passes on
   the same examples (``loss.backward()`` and ``zero_grad``), on a small Llama.

Each measurement runs in a fresh forked process, so its peak memory is its own: the peak resident set
above what the process held when it started (CPU), or torch's peak allocation (CUDA).

    python benchmarks/seeking_extract.py [--device cuda] [--k 16] [--loop-rows 257]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import torch

from pkt.methods.seeking.extract import best_block, sensitivity


def reference_loop(sens: torch.Tensor, shape: tuple[int, int], rows: int | None = None) -> tuple[int, int]:
    """The straightforward search: a summed-area table, then a Python loop over every position."""
    n, m = shape
    table = sens.double().cumsum(0).cumsum(1)
    best, where = -float("inf"), (0, 0)
    last_row = sens.shape[0] - n + 1 if rows is None else rows
    for i in range(last_row):
        for j in range(sens.shape[1] - m + 1):
            bottom, right = i + n - 1, j + m - 1
            total = table[bottom, right]
            if i > 0:
                total = total - table[i - 1, right]
            if j > 0:
                total = total - table[bottom, j - 1]
            if i > 0 and j > 0:
                total = total + table[i - 1, j - 1]
            if total > best:
                best, where = total, (i, j)
    return where


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _child(fn, args, repeat, queue) -> None:
    start_rss = _rss_mb()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    seconds = float("inf")
    for _ in range(repeat):  # the best of ``repeat`` calls: the first one pays torch's warm-up
        t0 = time.perf_counter()
        result = fn(*args)
        seconds = min(seconds, time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - start_rss
    if torch.cuda.is_available() and torch.cuda.memory_allocated() + torch.cuda.max_memory_allocated() > 0:
        peak = torch.cuda.max_memory_allocated() / 2**20
    queue.put((seconds, peak, result))


def measure(fn, *args, repeat: int = 1):
    """(seconds, peak MB, result) of fn(*args) in a forked process (best time of ``repeat`` calls)."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, repeat, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def tiny_llama(device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=4000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return LlamaForCausalLM(cfg).to(device, dtype).eval()


def seed_examples(k: int, device: str) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(k):
        ids = torch.randint(0, 4000, (1, 192), generator=gen)
        labels = ids.clone()
        labels[:, :64] = -100  # the prompt: no loss
        out.append({"input_ids": ids.to(device), "labels": labels.to(device)})
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_passes(device: str, k: int) -> float:
    """Seconds of k forward + backward passes (model building excluded)."""
    model, examples = tiny_llama(device), seed_examples(k, device)
    _sync(device)
    t0 = time.perf_counter()
    for ex in examples:
        model(**ex, use_cache=False).loss.backward()
        model.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - t0


def hooked_passes(device: str, k: int) -> float:
    """Seconds of the sensitivity pass over the same k examples (model building excluded)."""
    model, examples = tiny_llama(device), seed_examples(k, device)
    _sync(device)
    t0 = time.perf_counter()
    sensitivity(model, examples, disable_progress=True)
    _sync(device)
    return time.perf_counter() - t0


def bf16_agreement(k: int) -> tuple[float, list[int], list[int]]:
    """On CUDA: layer scores of a bf16 sensitivity pass against fp32 on the same model and examples."""
    from pkt.methods.seeking.extract import choose_layers, layer_scores

    scores = {}
    for dtype in (torch.float32, torch.bfloat16):
        model, examples = tiny_llama("cuda").to(dtype=dtype), seed_examples(k, "cuda")
        sens, _ = sensitivity(model, examples, disable_progress=True)
        scores[dtype] = layer_scores(sens, 4)[0]
    exact, low = scores[torch.float32], scores[torch.bfloat16]
    worst = max(abs(a - b) / abs(a) for a, b in zip(exact, low))
    return worst, choose_layers(exact, 2), choose_layers(low, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--k", type=int, default=16, help="seed examples of the sensitivity pass")
    parser.add_argument("--loop-rows", type=int, default=None,
                        help="time the loop on this many of its 257 row positions and scale up (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    sens = torch.rand(1024, 1024, generator=torch.Generator().manual_seed(0))
    sens[200:968, 100:868] += 0.01  # a best block that is not at the border
    fast_s, fast_mb, fast_at = measure(best_block, sens, (768, 768), repeat=5)
    positions = 257
    rows = args.loop_rows or positions
    loop_s, loop_mb, loop_at = measure(reference_loop, sens, (768, 768), rows)
    loop_total = loop_s * positions / rows
    same = fast_at[:2] == loop_at if rows == positions else "(partial loop: block not compared)"
    print("1. block search, 1024 x 1024 -> 768 x 768 (66,049 positions), 1 thread")
    print(f"   summed-area table, all positions at once: {fast_s * 1e3:9.1f} ms  peak +{fast_mb:7.1f} MB"
          f"  block {fast_at[:2]}")
    print(f"   loop over every position (reference):     {loop_total * 1e3:9.1f} ms  peak +{loop_mb:7.1f} MB"
          f"  block {loop_at}" + ("" if rows == positions else f"  (timed on {rows} of {positions} rows, scaled)"))
    print(f"   speed-up: {loop_total / fast_s:.0f}x; same block: {same}")

    _, plain_mb, plain_s = measure(plain_passes, args.device, args.k, repeat=2)
    _, hooked_mb, hooked_s = measure(hooked_passes, args.device, args.k, repeat=2)
    print(f"2. sensitivity, k = {args.k} examples of 192 tokens, Llama d 256 x 4 layers, vocab 4000,"
          f" {args.device}")
    print(f"   k plain forward + backward passes:        {plain_s:9.2f} s   peak +{plain_mb:7.1f} MB")
    print(f"   sensitivity pass (hooks, fp32 |W*g| sum): {hooked_s:9.2f} s   peak +{hooked_mb:7.1f} MB")
    print(f"   ratio sensitivity / plain: {hooked_s / plain_s:.2f}x time,"
          f" {hooked_mb / max(plain_mb, 1e-9):.2f}x memory")
    if args.device.startswith("cuda"):
        worst, exact, low = bf16_agreement(args.k)
        print(f"3. bf16 vs fp32 sensitivity on CUDA: largest relative layer-score difference {worst:.2e};"
              f" top-2 layers fp32 {exact}, bf16 {low}")


if __name__ == "__main__":
    main()
