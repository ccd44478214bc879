localrules:
    pair_layers,


rule pair_layers:
    input:
        teacher=teacher_importance,
        student=student_importance,
        code=lib("pairing", "pairing_plot"),
    output:
        pairing=f"{RUN}/pairing/{{pair}}/{{task}}.json",
        figure=report(
            f"{RUN}/pairing/{{pair}}/{{task}}.png",
            caption="../report/pairing.rst",
            category="Layer pairing",
            labels={"pair": "{pair}", "task": "{task}"},
        ),
    log:
        f"{LOGS}/pair_layers/{{pair}}/{{task}}.log",
    params:
        pairing=config["pairing"],
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/pair_layers.py"


rule pairings:
    input:
        expand(f"{RUN}/pairing/{{pair}}/{{task}}.{{ext}}", pair=list(config["pairs"]), task=TASKS, ext=["json", "png"]),
