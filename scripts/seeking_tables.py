"""Rule seeking_tables: the Seeking config's eval JSONs -> tables/seeking_main.{csv,md,tex} (Seeking's Table 1),
with seeking.transfer tables/seeking_transfer.*, with seeking.ablation tables/seeking_ablation.*, each beside
Seeking's published values."""

from pkt.methods.seeking.tables import (
    ablation_pairs,
    ablation_table,
    ablation_with_published,
    main_table,
    published_rows,
    transfer_table,
    with_published,
    write_table,
)
from pkt.report.published import repo_id
from pkt.report.published_seeking import ABLATION_SOURCE, COLUMNS, TRANSFER_SOURCE
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
                        "every column's adapter, trained on its own task", source=TRANSFER_SOURCE)
        if inp.ablation:
            evaluated = [c for c in main.columns if c in COLUMNS]
            complete = len(evaluated) == len(COLUMNS)
            ablation = ablation_with_published(ablation_table(inp.ablation, params.ablation),
                                               ablation_pairs(params.pairs, ids), complete)
            write_table(ablation, out.ablation_csv, out.ablation_md, out.ablation_tex,
                        f"{params.caption}. Ablations: each variant changes one switch of Seeking's extraction (the "
                        f"full method: sensitivity layers, the sub-matrix, all modules); Avg is the mean of the "
                        f"{len(evaluated)} columns evaluated ({', '.join(evaluated)}), the published Avg of Table "
                        "1's seven" + ("" if complete else ", AlpacaFarm included: compare Avg - full, not Avg")
                        + "; neuron (a structure the paper names but does not define) is not reproduced",
                        source=ABLATION_SOURCE)
