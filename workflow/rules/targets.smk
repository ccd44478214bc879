# One job per pair runs the teacher over every task's train split once: training never loads the teacher.
rule teacher_targets:
    input:
        teacher=lambda wc: f"{RUN}/models/{config['pairs'][wc.pair]['teacher']}",
        student=pair_student_dir,
        splits=expand(f"{RUN}/data/{{task}}/train.jsonl", task=TRAIN_TASKS),
        align=[f"{RUN}/data/{task}/align.jsonl" for task in TRAIN_TASKS if "align" in SPLITS_OF[task]],
        pairings=per_task(f"{RUN}/pairing/{{pair}}/{{task}}.json", TRAIN_TASKS),
        code=code("scripts/teacher_targets.py"),
    output:
        [directory(d) for d in per_task(f"{RUN}/targets/{{pair}}/{{task}}", TRAIN_TASKS)],
    log:
        f"{LOGS}/teacher_targets/{{pair}}.log",
    benchmark:
        f"{LOGS}/teacher_targets/{{pair}}.benchmark.tsv"
    params:
        targets=lambda wc: {k: config["semalign"][k] for k in ("pairs", "signal", "interpolate", "topk", "targets_dtype")},
        max_gb=config["semalign"]["targets_max_gb"],
        shared_vocab_only=config["semalign"]["shared_vocab_only"],
        batch_size=config["semalign"]["batch_size"],
        tasks=TRAIN_TASKS,
        models=lambda wc: [config["pairs"][wc.pair]["teacher"], config["pairs"][wc.pair]["student"]],
        max_length=lambda wc: max_length_of(config["pairs"][wc.pair]["student"]),
        device=config["device"],
    threads: 1
    resources:
        **sized("targets", "teacher", "student", units=len(TRAIN_TASKS)),
    conda:
        "../envs/pkt.yaml"
    message:
        with_asks("Teacher targets of {wildcards.pair} for SemAlign on every task")
    script:
        "../../scripts/teacher_targets.py"


rule targets:
    input:
        expand(f"{RUN}/targets/{{pair}}/{{task}}", pair=PAIRS, task=TRAIN_TASKS),
