# Seeking's own tables (config/seeking.yaml): its Table 1 from the vanilla models and the lora and seeking rows, and
# (seeking.transfer) its task-transfer table from the seeking_from_<task> rows, which the train and evaluate rules
# fit and score like any method. Both beside Seeking's published values (pkt.report.published_seeking).
localrules:
    seeking_tables,


rule seeking_tables:
    input:
        main=seeking_main_evals(),
        transfer=expand(f"{RUN}/eval/{{row}}/{{pair}}/{{task}}/seed{{seed}}.json", row=TRANSFER_ROWS, pair=PAIRS,
                        task=EVAL_TASKS, seed=SEEDS),
        code=code("scripts/seeking_tables.py"),
    output:
        **seeking_table_outputs(),
    log:
        f"{LOGS}/seeking_tables.log",
    params:
        pairs=config["pairs"],
        models=config["models"],
        caption=table_caption(),
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/seeking_tables.py"
