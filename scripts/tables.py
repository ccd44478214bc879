"""Rule tables: every eval JSON -> the main table (mean ± std over seeds), the vs-reference table with
paired bootstrap intervals (csv, md, tex each) and metrics.json."""

from pkt.runtime import job_logging
from pkt.tables import load_items, load_results, main_table, vs_reference, write_tables, write_vs_reference

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        out, params, cfg = snakemake.output, snakemake.params, snakemake.params.tables
        table = main_table(load_results(snakemake.input.evals, params.pairs))
        write_tables(table, out.csv, out.md, out.tex, out.metrics, caption=params.caption)
        versus = vs_reference(load_items(snakemake.input.evals, params.pairs), reference=cfg["reference"],
                              n_boot=cfg["bootstrap"], level=cfg["level"], seed=cfg["seed"])
        write_vs_reference(versus, out.vs_csv, out.vs_md, out.vs_tex, caption=params.caption)
