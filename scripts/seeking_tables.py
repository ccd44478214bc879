"""Rule seeking_tables: the Seeking config's eval JSONs -> tables/seeking_main.{csv,md,tex} (Seeking's Table 1) and,
with seeking.transfer, tables/seeking_transfer.{csv,md,tex}, each beside Seeking's published values."""

from pkt.methods.seeking.tables import main_table, published_rows, transfer_table, with_published, write_table
from pkt.report.published import repo_id
from pkt.runtime import job_logging

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        params, inp, out = snakemake.params, snakemake.input, snakemake.output
        ids = {name: repo_id(model) for name, model in params.models.items()}
        main = with_published(main_table(inp.main, params.pairs), published_rows(params.pairs, ids))
        write_table(main, out.main_csv, out.main_md, out.main_tex, params.caption)
        if inp.transfer:
            transfer = with_published(transfer_table(inp.transfer), published_rows(params.pairs, ids, transfer=True))
            write_table(transfer, out.transfer_csv, out.transfer_md, out.transfer_tex,
                        f"{params.caption}. Task transfer: the factors extracted from each row's task initialise "
                        "every column's adapter, trained on its own task", transfer=True)
