"""Rule ablation_table: the SemAlign ablation's results -> tables/semalign_ablation.{csv,md,tex}."""

from pkt.methods.semalign.ablation import ablation_table, configured_label, variants, write_ablation
from pkt.runtime import job_logging

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        params, cfg, out = snakemake.params, snakemake.params.tables, snakemake.output
        labels = {"semalign": configured_label(params.semalign),
                  **{slug: v["label"] for slug, v in variants(params.semalign).items()}}
        table = ablation_table(snakemake.input.configured, snakemake.input.ablated, labels, params.pairs,
                               n_boot=cfg["bootstrap"], level=cfg["level"], seed=cfg["seed"])
        write_ablation(table, out.csv, out.md, out.tex, params.caption)
