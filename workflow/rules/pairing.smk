localrules:
    pair_layers,


# One job per pair pairs the layers for every task (and draws one figure per task).
rule pair_layers:
    input:
        teacher=teacher_importance,
        student=student_importance,
        code=code("scripts/pair_layers.py"),
    output:
        pairings=per_task(f"{RUN}/pairing/{{pair}}/{{task}}.json", TASKS),
        figures=[
            report(
                figure,
                caption="../report/pairing.rst",
                category="Layer pairing",
                labels={"pair": "{pair}", "task": task},
            )
            for task, figure in zip(TASKS, per_task(f"{RUN}/pairing/{{pair}}/{{task}}.png", TASKS))
        ],
    log:
        f"{LOGS}/pair_layers/{{pair}}.log",
    benchmark:
        f"{LOGS}/pair_layers/{{pair}}.benchmark.tsv"
    params:
        pairing=config["pairing"],
        tasks=TASKS,
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/pair_layers.py"


rule pairings:
    input:
        expand(f"{RUN}/pairing/{{pair}}/{{task}}.{{ext}}", pair=list(config["pairs"]), task=TASKS, ext=["json", "png"]),
