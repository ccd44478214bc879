rule train:
    input:
        unpack(method_inputs),
        student=pair_student_dir,
        split=f"{RUN}/data/{{task}}/train.jsonl",
        code=lib("train", "data", "methods/base", "methods/{method}"),
    output:
        directory(f"{RUN}/adapters/{{method}}/{{pair}}/{{task}}/seed{{seed}}"),
    log:
        f"{LOGS}/train/{{method}}/{{pair}}/{{task}}/seed{{seed}}.log",
    benchmark:
        f"{LOGS}/train/{{method}}/{{pair}}/{{task}}/seed{{seed}}.benchmark.tsv"
    params:
        method_settings=method_settings,
        train=config["train"],
        checkpoints=checkpoint_dir,
        device=config["device"],
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=0,
    conda:
        "../envs/pkt.yaml"
    message:
        "Training {wildcards.method} for {wildcards.pair} on {wildcards.task} (seed {wildcards.seed})"
    script:
        "../../scripts/train.py"
