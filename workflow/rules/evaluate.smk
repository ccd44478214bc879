rule evaluate:
    input:
        unpack(eval_inputs),
        code=lib("evaluate", "tasks", "sandbox"),
    output:
        result=f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.json",
        samples=f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.samples.jsonl",
    log:
        f"{LOGS}/evaluate/{{method}}/{{pair}}/{{task}}/seed{{seed}}.log",
    benchmark:
        f"{LOGS}/evaluate/{{method}}/{{pair}}/{{task}}/seed{{seed}}.benchmark.tsv"
    params:
        evaluation=config["evaluation"],
        data=task_data,
        model=eval_model_config,
        model_name=eval_model_name,
        max_length=eval_max_length,
        device=config["device"],
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        "../envs/pkt.yaml"
    message:
        "Evaluating {wildcards.method} {wildcards.pair} on {wildcards.task} (seed {wildcards.seed})"
    script:
        "../../scripts/evaluate.py"


rule evaluations:
    input:
        eval_targets(),
