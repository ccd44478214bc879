# Seeking's task-transfer table (seeking.transfer): the seeking_from_<task> rows are trained and evaluated by the
# train and evaluate rules like any method; this rule tabulates them beside Seeking's published values.
localrules:
    seeking_transfer_table,


rule seeking_transfer_table:
    input:
        evals=expand(f"{RUN}/eval/{{row}}/{{pair}}/{{task}}/seed{{seed}}.json", row=TRANSFER_ROWS, pair=PAIRS,
                     task=EVAL_TASKS, seed=SEEDS),
        code=code("scripts/seeking_transfer_table.py"),
    output:
        csv=report(f"{RUN}/tables/seeking_transfer.csv", caption="../report/seeking_transfer.rst", category="Tables"),
        md=f"{RUN}/tables/seeking_transfer.md",
        tex=f"{RUN}/tables/seeking_transfer.tex",
    log:
        f"{LOGS}/seeking_transfer_table.log",
    params:
        pairs=config["pairs"],
        models=config["models"],
        caption=lambda wc: f"{table_caption()}. Seeking's task transfer: factors extracted from each row's task, "
                           "every column's adapter trained on its own task from them",
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/seeking_transfer_table.py"
