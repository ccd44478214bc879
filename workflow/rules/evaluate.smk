# One job per method x pair runs every seed's adapters on every task with one model load (the adapters
# are loaded side by side and switched); one job per vanilla model, seed 0 (the papers report one run; sampled tasks draw with the seed).
rule evaluate:
    input:
        unpack(eval_inputs),
        code=code("scripts/evaluate.py"),
    output:
        results=per_seed_task(f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.json"),
        samples=per_seed_task(f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.samples.jsonl"),
    log:
        f"{LOGS}/evaluate/{{method}}/{{pair}}.log",
    benchmark:
        f"{LOGS}/evaluate/{{method}}/{{pair}}.benchmark.tsv"
    params:
        tasks=EVAL_TASKS,
        seeds=SEEDS,
        adapters=eval_adapters,
        train_of=TRAIN_OF,  # the adapter of an evaluated task: its train task's
        evaluation=config["evaluation"],
        data=task_data,
        model=eval_model_config,
        model_name=eval_model_name,
        max_length=eval_max_length,
        device=config["device"],
        verdicts=f"{RUN}/sandbox",
    wildcard_constraints:
        method="|".join(TRAINED),
    threads: 1
    resources:
        **sized("evaluate", "evaluated", units=EVAL_UNITS * len(SEEDS)),
    group:
        "evaluate"  # on a cluster, --group-components evaluate=N runs N evaluations in one allocation
    conda:
        "../envs/pkt.yaml"
    message:
        with_asks("Evaluating {wildcards.method} {wildcards.pair} on every task and seed")
    script:
        "../../scripts/evaluate.py"


use rule evaluate as evaluate_vanilla with:
    output:
        results=per_seed_task(f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.json", seeds=[0]),
        samples=per_seed_task(f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.samples.jsonl", seeds=[0]),
    params:
        tasks=EVAL_TASKS,
        seeds=[0],
        adapters=eval_adapters,
        train_of=TRAIN_OF,  # the adapter of an evaluated task: its train task's
        evaluation=config["evaluation"],
        data=task_data,
        model=eval_model_config,
        model_name=eval_model_name,
        max_length=eval_max_length,
        device=config["device"],
        verdicts=f"{RUN}/sandbox",
    wildcard_constraints:
        method="vanilla",
    resources:
        **sized("evaluate", "evaluated", units=EVAL_UNITS),
    message:
        with_asks("Evaluating {wildcards.pair} as it is on every task")


rule evaluations:
    input:
        eval_targets(),
