"""Where a run's time goes: the ``benchmark:`` files of its jobs, summed per rule.

Every rule writes a Snakemake benchmark TSV under ``logs/<run>/<rule>/...`` (seconds, peak memory,
CPU time). ``python -m pkt.report.timing logs/toy`` (or ``make timing``) prints one line per rule: jobs,
summed and longest wall seconds, CPU seconds and peak memory, then the span from the first job's
start (file time minus its duration) to the last job's end, which is the DAG's wall time when the
whole DAG ran in one go.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def load_benchmarks(log_dir: str | Path) -> pd.DataFrame:
    """One row per job: rule (the first folder under ``log_dir``, or the file's stem), seconds, cpu, rss, end."""
    root = Path(log_dir)
    rows = []
    for path in sorted(root.rglob("*.benchmark.tsv")):
        rel = path.relative_to(root)
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.name.removesuffix(".benchmark.tsv")
        frame = pd.read_csv(path, sep="\t")
        if frame.empty:
            continue
        last = frame.iloc[-1]
        rows.append({"rule": rule, "job": str(rel.with_suffix("").with_suffix("")), "s": float(last["s"]),
                     "cpu_s": float(last.get("cpu_time", float("nan"))), "max_rss_mb": float(last["max_rss"]),
                     "end": path.stat().st_mtime})
    if not rows:
        raise FileNotFoundError(f"no *.benchmark.tsv under {root}: run the DAG first (snakemake --cores 2)")
    return pd.DataFrame(rows)


def per_rule(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs, summed / longest wall seconds, CPU seconds and peak memory per rule, the longest first."""
    table = jobs.groupby("rule").agg(jobs=("job", "size"), wall_s=("s", "sum"), longest_s=("s", "max"),
                                     cpu_s=("cpu_s", "sum"), max_rss_mb=("max_rss_mb", "max"))
    return table.sort_values("wall_s", ascending=False)


def span_s(jobs: pd.DataFrame) -> float:
    """Seconds from the first job's start to the last job's end."""
    return float(jobs["end"].max() - (jobs["end"] - jobs["s"]).min())


def report(log_dir: str | Path) -> str:
    jobs = load_benchmarks(log_dir)
    table = per_rule(jobs).round({"wall_s": 1, "longest_s": 1, "cpu_s": 1, "max_rss_mb": 0})
    total = jobs["s"].sum()
    return "\n".join([
        f"Job time per rule ({log_dir}, from the benchmark: files)",
        "",
        table.reset_index().to_markdown(index=False),
        "",
        f"{len(jobs)} jobs, {total:.0f} s of job time; first start to last end: {span_s(jobs):.0f} s "
        f"({total / max(span_s(jobs), 1e-9):.2f} jobs running on average)",
    ])


if __name__ == "__main__":
    print(report(sys.argv[1] if len(sys.argv) > 1 else "logs/toy"))
