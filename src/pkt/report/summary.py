"""Print where a run's results are and the headline figures (``python -m pkt.report.summary results/toy``)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from pkt.report.tables import MARK, ROWS


def copied_rows(tables: Path) -> list[str]:
    """One line per row that copies an earlier row on every item (the tables' ``identical_to`` column: LaTen
    equal to Student): the reader must not take its cells, or their stars, as evidence about its method."""
    lines = []
    for path in sorted(tables.glob("vs_*.csv")):
        with open(path, newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                if rec.get("identical_to"):
                    other = ROWS.get(rec["identical_to"], rec["identical_to"])
                    lines.append(f"  {rec['model']} (pair {rec['pair']}) is identical to {other} on every item, task "
                                 f"and seed: its cells, in every table, are {other}'s ({path.name})")
    ablation = tables / "semalign_ablation.csv"
    if ablation.is_file():
        with open(ablation, newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                if rec.get("identical_to"):
                    lines.append(f"  SemAlign ablation: {rec['Model'].removesuffix(f' {MARK}')!r} is identical to "
                                 f"{rec['identical_to']!r} on its seeds: the switch changed nothing ({ablation.name})")
    return lines


def summarise(run_dir: str | Path) -> str:
    """The probe's accuracy per model, the models' pretraining, the main, vs-reference and ablation tables."""
    run = Path(run_dir)
    lines = [f"Results of {run}/"]
    probes = sorted((run / "probe").glob("*.json"))
    if probes:
        lines.append(f"Knowledge probe ({run / 'probe'}/<model>.json; option log-likelihood, toy_mmlu test):")
        for path in probes:
            p = json.loads(path.read_text())
            lines.append(
                f"  {p['model']:<10} held-out facts {p['acc_held_out']:.2f} (n={p['n_held_out']})  "
                f"control facts {p['acc_control']:.2f} (n={p['n_control']})  chance {p['chance']:.2f}"
            )
    for path in sorted((run / "models").glob("*/training.json")):
        t = json.loads(path.read_text())
        lines.append(f"  {t['name']:<10} {t['parameters'] / 1e6:.2f}M params, {t['steps']} steps, "
                     f"final loss {t['final_loss']:.3f}, {t['wall_s']:.0f}s ({path.parent})")
    copies = copied_rows(run / "tables")
    if copies:
        lines += ["", f"Rows identical to another row (marked {MARK} in the tables):", *copies]
    table = run / "tables" / "main.md"
    if table.is_file():
        lines += ["", f"Main table ({table}; also .csv, .tex; figures in {run / 'figures'}/):", table.read_text()]
    for versus in sorted((run / "tables").glob("vs_*.md")):
        lines += [f"Against the reference ({versus}; also .csv with the raw numbers, .tex):", versus.read_text()]
    ablation = run / "tables" / "semalign_ablation.md"
    if ablation.is_file():
        lines += [f"SemAlign ablation ({ablation}; also .csv, .tex; CKA and bases figures in {run / 'analysis'}/):",
                  ablation.read_text()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(sys.argv[1] if len(sys.argv) > 1 else "results/toy"))
