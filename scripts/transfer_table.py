"""Rule transfer_table: the transfer probe's results -> tables/transfer_probe.{csv,md,tex}."""

from pkt.report.noted import write_noted_table
from pkt.runtime import job_logging
from pkt.transfer_probe import probe_table

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        params, inp, out = snakemake.params, snakemake.input, snakemake.output
        tables = params.tables
        table = probe_table(list(inp.student), list(inp.results), params.pairs, tables["bootstrap"], tables["level"],
                            tables["seed"])
        write_noted_table(table, out.csv, out.md, out.tex, params.caption, label="tab:transfer-probe")
