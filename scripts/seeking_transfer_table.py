"""Rule seeking_transfer_table: the seeking_from_<task> rows' eval JSONs -> tables/seeking_transfer.{csv,md,tex}."""

from pkt.methods.seeking.transfer import transfer_table, with_published, write_transfer
from pkt.report.published import repo_id
from pkt.report.published_seeking import LLAMA2_7B, LLAMA2_13B
from pkt.runtime import job_logging

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        params, out = snakemake.params, snakemake.output
        published = [pair for pair, spec in params.pairs.items()  # Seeking's own checkpoints: its printed values
                     if (repo_id(params.models[spec["teacher"]]), repo_id(params.models[spec["student"]]))
                     == (LLAMA2_13B, LLAMA2_7B)]
        table = with_published(transfer_table(snakemake.input.evals), published)
        write_transfer(table, out.csv, out.md, out.tex, params.caption)
