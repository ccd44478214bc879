# One job per method x pair fits every seed's and task's adapter in one process: importing transformers
# and peft costs ~9 s per process, more than a toy adapter's training.
rule train:
    input:
        unpack(method_inputs),
        student=pair_student_dir,
        splits=lambda wc: list(train_splits(wc).values()),
        code=code("scripts/train.py"),
        method_code=method_code,
    output:
        [directory(d) for d in per_seed_task(f"{RUN}/adapters/{{method}}/{{pair}}/{{task}}/seed{{seed}}", tasks=TRAIN_TASKS)],
    log:
        f"{LOGS}/train/{{method}}/{{pair}}.log",
    benchmark:
        f"{LOGS}/train/{{method}}/{{pair}}.benchmark.tsv"
    params:
        method_settings=method_settings,
        method_inputs=method_task_inputs,
        train=train_settings,
        splits=train_splits,
        adapters=adapter_dirs,
        checkpoints=checkpoint_dirs,
        tensorboard=lambda wc: f"{LOGS}/tensorboard/{wc.method}/{wc.pair}",  # train.report_to: tensorboard
        device=config["device"],
    wildcard_constraints:
        method="|".join(TRAINED),
    threads: 1
    resources:
        **sized(train_stage, "student", "laten_teacher", units=train_units),
    conda:
        "../envs/pkt.yaml"
    message:
        with_asks("Training {wildcards.method} for {wildcards.pair} on every task and seed")
    script:
        "../../scripts/train.py"
