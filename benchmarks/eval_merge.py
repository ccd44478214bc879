"""Evaluation with adapters: peft's switched LoRA branch vs the adapter merged into a copy of the weights.

Needs the demo's models, data and LoRA adapters (run `make demo` first). For each generation task it
evaluates the same adapter both ways in one process, alternating for a few rounds, and prints the best
seconds of each, their ratio, and whether the scores agree (they must: the same function).

    python benchmarks/eval_merge.py [--run results/toy] [--method lora] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from pkt.evaluation.evaluate import load_lm, run_task, use_adapter
from pkt.runtime import set_offline

TASKS = ("toy_gsm8k", "toy_humaneval", "toy_mbpp")


def timed(lm, task: str, tasks_dir: Path, run: Path) -> tuple[float, float]:
    start = time.perf_counter()
    summary, _ = run_task(lm, task, tasks_dir, data={"data_files": {"test": str(run / "data" / task / "test.jsonl")}})
    return time.perf_counter() - start, summary["value"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="results/toy")
    ap.add_argument("--method", default="lora")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    set_offline()
    torch.set_num_threads(1)
    run, tasks_dir = Path(args.run), Path(__file__).resolve().parents[1] / "workflow" / "tasks"
    print(f"{'task':<15} {'switched_s':>10} {'merged_s':>9} {'speed-up':>8}  scores agree")
    for task in TASKS:
        adapter = {"a": run / "adapters" / args.method / "toy" / task / "seed0"}
        lms = {mode: load_lm(run / "models" / "student", adapter, batch_size=args.batch_size, max_length=512,
                             merge=mode == "merged") for mode in ("switched", "merged")}
        best, scores = {}, {}
        for _ in range(args.rounds):
            for mode, lm in lms.items():
                use_adapter(lm, "a")
                seconds, scores[mode] = timed(lm, task, tasks_dir, run)
                best[mode] = min(best.get(mode, seconds), seconds)
        print(f"{task:<15} {best['switched']:>10.2f} {best['merged']:>9.2f} {best['switched'] / best['merged']:>7.2f}x"
              f"  {scores['switched'] == scores['merged']}")


if __name__ == "__main__":
    main()
