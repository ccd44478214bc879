# One job per method x pair x seed fits every task's adapter in one process: importing transformers
# and peft costs ~9 s per process, more than a toy adapter's training.
rule train:
    input:
        unpack(method_inputs),
        student=pair_student_dir,
        splits=lambda wc: list(train_splits(wc).values()),
        code=lib("train", "data", "checkpoints", "methods/base"),
        method_code=method_code,
    output:
        [directory(d) for d in per_task(f"{RUN}/adapters/{{method}}/{{pair}}/{{task}}/seed{{seed}}")],
    log:
        f"{LOGS}/train/{{method}}/{{pair}}/seed{{seed}}.log",
    benchmark:
        f"{LOGS}/train/{{method}}/{{pair}}/seed{{seed}}.benchmark.tsv"
    params:
        method_settings=method_settings,
        method_inputs=method_task_inputs,
        train=train_settings,
        splits=train_splits,
        adapters=adapter_dirs,
        checkpoints=checkpoint_dirs,
        device=config["device"],
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=0,
    conda:
        "../envs/pkt.yaml"
    message:
        "Training {wildcards.method} for {wildcards.pair} on every task (seed {wildcards.seed})"
    script:
        "../../scripts/train.py"
