# One job per pair extracts every task's factors: one teacher load, one import of transformers, one sensitivity
# pass per task, from which the ablation rows' factors (seeking.ablation) are cut too.
rule extract_seeking:
    input:
        teacher=lambda wc: f"{RUN}/models/{config['pairs'][wc.pair]['teacher']}",
        student=pair_student_dir,
        splits=expand(f"{RUN}/data/{{task}}/extract.jsonl", task=EXTRACT_TASKS),
        code=code("scripts/extract_seeking.py"),
    output:
        factors=per_task(f"{RUN}/extract/{{pair}}/{{task}}/factors.safetensors", EXTRACT_TASKS),
        records=per_task(f"{RUN}/extract/{{pair}}/{{task}}/extract.json", EXTRACT_TASKS),
        figures=[
            report(
                figure,
                caption="../report/extract.rst",
                category="Seeking extraction",
                labels={"pair": "{pair}", "task": task},
            )
            for task, figure in by_task(f"{RUN}/extract/{{pair}}/{{task}}/sensitivity.png", EXTRACT_TASKS).items()
        ],
        **ablation_extract_outputs(),
    log:
        f"{LOGS}/extract_seeking/{{pair}}.log",
    benchmark:
        f"{LOGS}/extract_seeking/{{pair}}.benchmark.tsv"
    params:
        # how factors are cut (pkt.methods.seeking.extract.ExtractSettings); transfer and ablation name rows
        seeking={key: value for key, value in config["seeking"].items() if key not in ("transfer", "ablation")},
        ablation={row: extract_overrides(row) for row in ABLATION_ROWS},  # {row: the switch it changes}
        ablation_tasks=TRAIN_TASKS if ABLATION_ROWS else [],
        rank=config["lora"]["r"],
        tasks=EXTRACT_TASKS,
        models=lambda wc: [config["pairs"][wc.pair]["teacher"], config["pairs"][wc.pair]["student"]],
        max_length=lambda wc: max_length_of(config["pairs"][wc.pair]["teacher"]),
        device=config["device"],
    threads: 1
    resources:
        **sized("extract", "teacher", "student", units=EXTRACT_UNITS),
    conda:
        "../envs/pkt.yaml"
    message:
        with_asks("Extracting Seeking's LoRA factors from the teacher of {wildcards.pair} for every task")
    script:
        "../../scripts/extract_seeking.py"


rule extractions:
    input:
        expand(
            f"{RUN}/extract/{{pair}}/{{task}}/{{file}}",
            pair=PAIRS,
            task=EXTRACT_TASKS,
            file=["factors.safetensors", "extract.json", "sensitivity.png"],
        ),
