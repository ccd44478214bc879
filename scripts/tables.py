"""Rule tables: every eval JSON -> the main comparison table (csv, md, tex) and metrics.json."""

from pkt.runtime import job_logging
from pkt.tables import load_results, main_table, write_tables

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        table = main_table(load_results(snakemake.input.evals, snakemake.params.pairs))
        write_tables(table, snakemake.output.csv, snakemake.output.md, snakemake.output.tex,
                     snakemake.output.metrics, caption=snakemake.params.caption)
