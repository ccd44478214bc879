# One job per pair trains and evaluates every variant on the ablation task (one import, one model load), or, where
# that job would outrun max_runtime (ABLATION_SPLIT: a cluster's limit), one job per pair and variant.
rule semalign_ablation:
    input:
        teacher=lambda wc: f"{RUN}/models/{config['pairs'][wc.pair]['teacher']}",
        student=pair_student_dir,
        targets=f"{RUN}/targets/{{pair}}/{ABLATION_TASK}",
        pairing=f"{RUN}/pairing/{{pair}}/{ABLATION_TASK}.json",
        split=f"{RUN}/data/{ABLATION_TASK}/train.jsonl",
        align=f"{RUN}/data/{ABLATION_TASK}/align.jsonl",
        tasks=f"workflow/tasks/{ABLATION_TASK}.yaml",
        data=[f"{RUN}/data/{ABLATION_TASK}/test.jsonl"] if ABLATION_TASK.startswith("toy_") else [],
        code=code("scripts/semalign_ablation.py", method_module("semalign")),
    output:
        ablation_results(variant="{variant}" if ABLATION_SPLIT else None),
    log:
        f"{LOGS}/semalign_ablation/{{pair}}{ABLATION_JOB}.log",
    benchmark:
        f"{LOGS}/semalign_ablation/{{pair}}{ABLATION_JOB}.benchmark.tsv"
    params:
        root=f"{RUN}/ablation/{{pair}}",
        variants=lambda wc: [wc.variant] if ABLATION_SPLIT else ablation_slugs(),
        semalign=config["semalign"],
        method_settings=semalign_settings(ABLATION_TASK),  # the ablation task's (semalign.align.tasks)
        train=lambda wc: train_settings(wc)[ABLATION_TASK],
        task=ABLATION_TASK,
        tasks_dir=lambda wc, input: str(Path(input.tasks).parent),
        data=lambda wc: task_data(wc)[ABLATION_TASK],
        evaluation=config["evaluation"],
        seeds=ABLATION_SEEDS,
        models=lambda wc: [config["pairs"][wc.pair]["teacher"], config["pairs"][wc.pair]["student"]],
        max_length=lambda wc: max_length_of(config["pairs"][wc.pair]["student"]),
        device=config["device"],
    wildcard_constraints:
        variant="|".join(ablation_slugs()),
    threads: 1
    resources:
        **sized("ablation", "teacher", "student", units=len(ablation_results("x", "v" if ABLATION_SPLIT else None))),
    conda:
        "../envs/pkt.yaml"
    message:
        with_asks("SemAlign ablation of {wildcards.pair} on {params.task}" + (": {wildcards.variant}" if ABLATION_SPLIT else ""))
    script:
        "../../scripts/semalign_ablation.py"


localrules:
    ablation_table,


rule ablation_table:
    input:
        configured=expand(f"{RUN}/eval/semalign/{{pair}}/{ABLATION_TASK}/seed{{seed}}.json", pair=PAIRS, seed=SEEDS),
        ablated=[path for pair in PAIRS for path in ablation_results(pair)],
        code=code("scripts/ablation_table.py"),
    output:
        csv=report(
            f"{RUN}/tables/semalign_ablation.csv",
            caption="../report/ablation.rst",
            category="Tables",
            labels={"table": "SemAlign ablation"},
        ),
        md=f"{RUN}/tables/semalign_ablation.md",
        tex=f"{RUN}/tables/semalign_ablation.tex",
    log:
        f"{LOGS}/ablation_table.log",
    params:
        semalign=config["semalign"],
        pairs=config["pairs"],
        tables=config["tables"],
        caption=lambda wc: (
            f"{table_caption()}. SemAlign ablation on {ABLATION_TASK} (seeds {ABLATION_SEEDS}): one switch"
            " flipped at a time"
        ),
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/ablation_table.py"


rule ablations:
    input:
        [path for pair in PAIRS for path in ablation_results(pair)] if "semalign" in config["methods"] else [],
