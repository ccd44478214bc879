"""Rule figures: per-benchmark bars for every row, and the training curves of every adapter."""

from pathlib import Path

from pkt.io import read_json, write_text
from pkt.report.figures import benchmark_bars, curves_table, items_per_column, training_curves
from pkt.report.tables import load_results, main_table
from pkt.runtime import job_logging

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        title = snakemake.params.title
        tidy = load_results(snakemake.input.evals, snakemake.params.pairs)
        benchmark_bars(main_table(tidy), snakemake.output.bars, title, n_items=items_per_column(tidy))
        curves = []
        for adapter in snakemake.input.adapters:
            fig = read_json(Path(adapter) / "training.json")
            curves.append({**fig, "task": Path(adapter).parent.name})
        run = title.split("; ")[0]  # "Run toy: toy scale (...)"; the caption's "scores in %" is about the bars
        training_curves(curves, snakemake.output.curves, run)
        write_text(snakemake.output.curves_csv, curves_table(curves).to_csv(index=False))
