"""Evaluation throughput: items per second per toy task on the demo's teacher and student (lm-eval).

Needs the demo's models and data (run `make demo` first). Prints items/s per task and model.

    python benchmarks/eval_throughput.py [--run results/toy] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from pkt.evaluation.evaluate import load_lm, run_task
from pkt.runtime import set_offline

TASKS = ("toy_mmlu", "toy_gsm8k", "toy_humaneval", "toy_mbpp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="results/toy")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    set_offline()
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    tasks_dir = Path(__file__).resolve().parents[1] / "workflow" / "tasks"
    print(f"{'model':<10} {'task':<15} {'items':>6} {'seconds':>8} {'items/s':>8}")
    for model in ("teacher", "student"):
        start = time.perf_counter()
        lm = load_lm(run / "models" / model, batch_size=args.batch_size, max_length=512)
        print(f"{model:<10} {'(model load)':<15} {'':>6} {time.perf_counter() - start:>8.2f}")
        for task in TASKS:
            start = time.perf_counter()
            summary, _ = run_task(lm, task, tasks_dir,
                                  data={"data_files": {"test": str(run / "data" / task / "test.jsonl")}})
            secs = time.perf_counter() - start
            print(f"{model:<10} {task:<15} {summary['n']:>6} {secs:>8.2f} {summary['n'] / secs:>8.1f}")


if __name__ == "__main__":
    main()
