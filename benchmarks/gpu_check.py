"""The project's GPU check: every shipped hub config's stand-in DAG on CUDA, the MFU benchmark, and vLLM.

On one CUDA GPU (about 8 minutes on an H100), with the repository's requirements and a CUDA build of torch:

    make gpu-check          # = python benchmarks/gpu_check.py --json results/gpu_check.json

1. **Stand-ins on the GPU.** Each shipped hub config (``tests/standin.py``: tiny random models of the config's
   own families and flags, the real LaTen splits, slices of the real benchmarks) runs ``tables figures`` with
   ``device: cuda``, so every model stage loads in bf16 on the GPU: what finds a tensor left on the host (the
   CPU runs in CI cannot). Each run's wall time and, on failure, the failing job's log tail are recorded.
2. **MFU.** ``benchmarks/train_step_mfu.py`` at Llama-2-7B shapes (one step of each method; its own JSON).
3. **vLLM.** Where vLLM is installed, the paper stand-in's evaluations again with ``evaluation.backend: vllm``;
   otherwise the summary says it was skipped and why.

One JSON summary holds all three. ``--device cpu`` runs part 1 on the CPU (a check of this script; CI runs the
same DAGs through ``tests/test_standins.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]


def log_tail(root: Path, lines: int = 30) -> str:
    """The end of the first job log with a traceback under ``root/logs`` (the failing job's), or ''."""
    for path in sorted((root / "logs").rglob("*.log")):
        text = path.read_text(errors="replace")
        if "Traceback" in text:
            return f"{path.relative_to(root)}:\n" + "\n".join(text.splitlines()[-lines:])
    return ""


def run_standin(overlay: str, device: str, scratch: Path, extra: dict | None = None) -> dict:
    """One stand-in DAG, ``extra`` merged over its config; {"overlay", "device", "ok", "wall_s", "error"}."""
    from conftest import copy_workflow, snakemake
    from standin import run_standin as run

    root = scratch / overlay.removesuffix(".yaml")
    root.mkdir(parents=True)
    copy_workflow(root)
    start = time.perf_counter()
    _, proc = run(overlay, root, snakemake, {"device": device, **(extra or {})}, check=False)
    ok = proc.returncode == 0
    return {"overlay": overlay, "device": device, "ok": ok, "wall_s": round(time.perf_counter() - start, 1),
            "error": None if ok else (log_tail(root) or proc.stdout[-3000:])}


def run_mfu(out: Path, timeout_s: int) -> dict:
    """The MFU benchmark's rows (its --json), or why there are none."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "train_step_mfu.py"), "--json", str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout_s} s"}
    if proc.returncode != 0 or not out.is_file():
        return {"ok": False, "error": (proc.stdout + proc.stderr)[-3000:]}
    return {"ok": True, **json.loads(out.read_text())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="gpu_check.json", help="where to write the summary")
    ap.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a check of this script)")
    ap.add_argument("--overlays", help="comma-separated subset of the hub configs (default: every one)")
    ap.add_argument("--mfu-timeout", type=int, default=240)
    args = ap.parse_args()

    import torch
    from standin import hub_overlays

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here (torch.cuda.is_available() is False); --device cpu checks the script")
    overlays = args.overlays.split(",") if args.overlays else hub_overlays()
    summary: dict = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
                     "torch": torch.__version__, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        summary["standins"] = [run_standin(o, args.device, scratch) for o in overlays]
        for row in summary["standins"]:
            print(f"stand-in {row['overlay']:<16} {'ok' if row['ok'] else 'FAILED':<7} {row['wall_s']:>7.1f} s")
        if args.device == "cuda":
            summary["mfu"] = run_mfu(scratch / "mfu.json", args.mfu_timeout)
            print(f"MFU benchmark: {'ok' if summary['mfu']['ok'] else 'FAILED'}")
        if find_spec("vllm") is None:
            summary["vllm"] = {"ok": None, "skipped": "vllm is not installed"}
        elif args.device != "cuda":
            summary["vllm"] = {"ok": None, "skipped": "vLLM serves on a GPU"}
        else:
            summary["vllm"] = run_standin("paper.yaml", "cuda", scratch / "vllm",
                                          {"evaluation": {"backend": "vllm"}})
        print(f"vLLM: {summary['vllm'].get('skipped') or ('ok' if summary['vllm']['ok'] else 'FAILED')}")
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=1))
    print(f"summary: {args.json} ({summary['wall_s']} s)")
    failed = [r["overlay"] for r in summary["standins"] if not r["ok"]]
    sys.exit(1 if failed or summary.get("mfu", {}).get("ok") is False or summary["vllm"].get("ok") is False else 0)


if __name__ == "__main__":
    main()
