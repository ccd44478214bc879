# One job per model (vanilla) or method x pair x seed runs every task with one model load; the
# adapters of a method are loaded side by side and switched per task.
rule evaluate:
    input:
        unpack(eval_inputs),
        code=lib("evaluate", "tasks", "sandbox"),
    output:
        results=per_task(f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.json"),
        samples=per_task(f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.samples.jsonl"),
    log:
        f"{LOGS}/evaluate/{{method}}/{{pair}}/seed{{seed}}.log",
    benchmark:
        f"{LOGS}/evaluate/{{method}}/{{pair}}/seed{{seed}}.benchmark.tsv"
    params:
        tasks=EVAL_TASKS,
        evaluation=config["evaluation"],
        data=task_data,
        model=eval_model_config,
        model_name=eval_model_name,
        max_length=eval_max_length,
        device=config["device"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        "../envs/pkt.yaml"
    message:
        "Evaluating {wildcards.method} {wildcards.pair} on every task (seed {wildcards.seed})"
    script:
        "../../scripts/evaluate.py"


rule evaluations:
    input:
        eval_targets(),
