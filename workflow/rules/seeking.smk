# Seeking's own tables (config/seeking.yaml): its Table 1 from the vanilla models and the lora and seeking rows,
# (seeking.transfer) its task-transfer table from the seeking_from_<task> rows and (seeking.ablation) its ablations
# from the seeking_<switch>_<variant> rows, which the train and evaluate rules fit and score like any method. Each
# beside Seeking's published values (pkt.report.published_seeking).
localrules:
    seeking_tables,


rule seeking_tables:
    input:
        main=seeking_main_evals(),
        transfer=row_evals(TRANSFER_ROWS),
        ablation=row_evals(["seeking", *ABLATION_ROWS] if ABLATION_ROWS else []),  # the full method beside them
        code=code("scripts/seeking_tables.py"),
    output:
        **seeking_table_outputs(),
    log:
        f"{LOGS}/seeking_tables.log",
    params:
        pairs=config["pairs"],
        models=config["models"],
        ablation=config["seeking"]["ablation"],
        caption=table_caption(),
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/seeking_tables.py"


# AlpacaFarm (seeking_eval.alpaca_farm, off by default: an API judge): one job per row and pair loads the student
# once, generates the 805 outputs of each seed's LIMA adapter and has alpaca_eval judge them against
# text-davinci-003 (pkt.evaluation.alpaca_farm); each seed's win rate is an eval result, task alpaca_farm.
rule alpaca_farm:
    input:
        model=pair_student_dir,
        adapters=[f"{RUN}/adapters/{{method}}/{{pair}}/{ALPACA['train_task']}/seed{seed}" for seed in SEEDS],
        prompts=ALPACA["prompts"] or [],
        code=code("scripts/alpaca_farm.py"),
    output:
        results=[f"{RUN}/eval/{{method}}/{{pair}}/alpaca_farm/seed{seed}.json" for seed in SEEDS],
        outputs=[directory(f"{RUN}/alpaca_farm/{{method}}/{{pair}}/seed{seed}") for seed in SEEDS],
    log:
        f"{LOGS}/alpaca_farm/{{method}}/{{pair}}.log",
    benchmark:
        f"{LOGS}/alpaca_farm/{{method}}/{{pair}}.benchmark.tsv"
    params:
        settings={key: value for key, value in ALPACA.items() if key != "enabled"},  # the key stays in the env
        seeds=SEEDS,
        evaluation=config["evaluation"],
        model=eval_model_config,
        model_name=eval_model_name,
        max_length=eval_max_length,
        device=config["device"],
    wildcard_constraints:
        method="|".join(TRAINED),
    threads: 1
    resources:
        **sized("evaluate", "student", units=3 * len(SEEDS)),  # 805 long greedy generations: ~3 tasks' work
    conda:
        "../envs/pkt.yaml"
    message:
        with_asks("AlpacaFarm: {wildcards.method} on {wildcards.pair}, every seed's LIMA adapter judged by "
                  f"{ALPACA['judge']}")
    script:
        "../../scripts/alpaca_farm.py"
