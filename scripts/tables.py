"""Rule tables: every eval JSON -> the main table (mean ± std over seeds; for the papers' hub models also the
published rows and reproduced - published), the vs-reference table with intervals over test items and seeds
(csv, md, tex each), metrics.json, and the code-teacher table in SemAlign Table 2's layout (csv, md, tex). Rows that
copy an earlier row on every item (LaTen = Student) are marked and footnoted in both tables; the vanilla rows are
named with their models, the columns with their metric and n, the captions with each pair's protocol."""

from pkt.data.manifest import check_results
from pkt.io import read_json
from pkt.report.published import published_cells
from pkt.report.published_tables import code_teacher_table, main_with_published, published_note, write_code_teachers
from pkt.report.tables import (
    describe_results,
    identical_rows,
    load_items,
    load_results,
    main_table,
    vs_reference,
    write_tables,
    write_vs_reference,
)
from pkt.runtime import job_logging

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        out, params, cfg = snakemake.output, snakemake.params, snakemake.params.tables
        check_results(((path, read_json(path)) for path in snakemake.input.evals), snakemake.input.manifest)
        table = main_table(load_results(snakemake.input.evals, params.pairs))
        items = load_items(snakemake.input.evals, params.pairs)
        info = describe_results(snakemake.input.evals, params.pairs)  # models, metric and n, protocols
        cells = published_cells(params.pairs, params.models)  # none for toy models
        note = published_note(cells, params.protocol)
        caption = f"{params.caption.rstrip(' .')}. {note}" if note else params.caption
        shown = main_with_published(table, cells, params.protocol, info.models) if cells else None  # toy: formatted
        copies = identical_rows(items)  # rows that copy an earlier one on every item: marked and footnoted
        write_tables(table, out.csv, out.md, out.tex, out.metrics, caption=caption, shown=shown, identical=copies,
                     info=info)
        versus = vs_reference(
            items,
            reference=cfg["reference"],
            n_boot=cfg["bootstrap"],
            level=cfg["level"],
            seed=cfg["seed"],
        )
        write_vs_reference(versus, out.vs_csv, out.vs_md, out.vs_tex, caption=params.caption, info=info)
        code = code_teacher_table(table, params.pairs, params.models, cells)
        write_code_teachers(code, out.code_csv, out.code_md, caption=params.caption, protocol=params.protocol,
                            info=info, identical=copies)  # and code_teachers.tex beside them (out.code_tex)
