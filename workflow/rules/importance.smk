# One job per model scores every task's extract split: one model load, one import of transformers.
rule score_importance:
    input:
        model=f"{RUN}/models/{{model}}",
        splits=expand(f"{RUN}/data/{{task}}/extract.jsonl", task=TASKS),
        code=code("scripts/score_importance.py"),
    output:
        per_task(f"{RUN}/importance/{{model}}/{{task}}.json", TASKS),
    log:
        f"{LOGS}/score_importance/{{model}}.log",
    benchmark:
        f"{LOGS}/score_importance/{{model}}.benchmark.tsv"
    params:
        importance=config["importance"],
        max_length=model_max_length,
        tasks=TASKS,
        device=config["device"],
    threads: 1
    resources:
        **sized("importance", "model", units=len(TASKS)),
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/score_importance.py"
