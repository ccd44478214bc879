"""Peak host memory of writing SemAlign's targets: all rows gathered in memory, then saved, vs streamed to disk.

The setting is the paper stand-in's (``tests/standin.py``): a random Llama of 5 layers x 160 as the teacher, a
128-wide student head, a BPE trained on the papers' splits, and a long split: LaTen's GSM8K train split, all
1,000 rows (long worked answers). Each way runs in a fresh process; its peak resident memory (``ru_maxrss``)
is reported above the process's own after the model is loaded and the split tokenised, beside the bytes
written. ``memory``: :func:`compute_targets` then :func:`write_targets` (every row held at once, as the rule did
before); ``stream``: :func:`write_task_targets` (rows written batch by batch into preallocated memmaps).

    python benchmarks/targets_memory.py [--rows 1000] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]
SPLIT = REPO.parent / "shared" / "data" / "paper_splits" / "gsm" / "gsm_train_split.jsonl"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_way(way: str, rows: int, batch_size: int, out: Path) -> dict:
    """Write the targets one way in this process; peak memory above the state before writing."""
    import torch
    from standin import tokenizer_for
    from transformers import LlamaConfig, LlamaForCausalLM

    from pkt.data.paper import convert
    from pkt.io import write_jsonl
    from pkt.methods.semalign.store import write_targets
    from pkt.methods.semalign.targets import TargetSettings, compute_targets, plan_targets, write_task_targets

    records = convert(SPLIT.read_bytes(), "paper_gsm8k", SPLIT.name, limit=rows)
    split = out / "split.jsonl"
    write_jsonl(split, records)
    tok = tokenizer_for("LlamaForCausalLM", 0)
    torch.manual_seed(0)
    teacher = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=160, intermediate_size=432,
                                           num_hidden_layers=5, num_attention_heads=2, num_key_value_heads=2,
                                           max_position_embeddings=2048)).eval()
    maps = {"logit": torch.randn(128, 160), "cosine": torch.randn(128, 160)}
    pairs, settings = [{"student": 4, "sources": [(5, 1.0)]}], TargetSettings()
    plans = plan_targets(tok, {"train": split}, batch_size, 2048)
    before = peak_mb()
    folder = out / "targets"
    if way == "memory":
        computed = compute_targets(teacher, plans["train"]["batches"], pairs, "delta", settings.topk)
        folder.mkdir()
        write_targets(folder, computed, {"pairs": pairs}, maps=maps)
    else:
        write_task_targets(folder, teacher, plans, pairs, maps, settings, {})
    disk = sum(p.stat().st_size for p in folder.glob("*.npy"))
    return {"way": way, "rows": plans["train"]["rows"], "disk_mb": disk / 2**20,
            "peak_above_mb": peak_mb() - before}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--way", choices=("memory", "stream"), help=argparse.SUPPRESS)  # one way, in a child process
    args = ap.parse_args()
    if args.way:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(one_way(args.way, args.rows, args.batch_size, Path(tmp))))
        return
    results = []
    for way in ("memory", "stream"):
        cmd = [sys.executable, __file__, "--way", way, "--rows", str(args.rows), "--batch-size", str(args.batch_size)]
        child = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results.append(json.loads(child.stdout.splitlines()[-1]))
    for r in results:
        print(f"{r['way']:<7} {r['rows']:>8} response tokens, {r['disk_mb']:7.1f} MB on disk, "
              f"peak host memory +{r['peak_above_mb']:7.1f} MB")
    print(f"ratio memory / stream: {results[0]['peak_above_mb'] / max(results[1]['peak_above_mb'], 1e-9):.1f}x")


if __name__ == "__main__":
    main()
