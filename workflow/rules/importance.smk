rule score_importance:
    input:
        model=f"{RUN}/models/{{model}}",
        split=f"{RUN}/data/{{task}}/extract.jsonl",
        code=lib("importance", "data"),
    output:
        f"{RUN}/importance/{{model}}/{{task}}.json",
    log:
        f"{LOGS}/score_importance/{{model}}/{{task}}.log",
    benchmark:
        f"{LOGS}/score_importance/{{model}}/{{task}}.benchmark.tsv"
    params:
        importance=config["importance"],
        device=config["device"],
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/score_importance.py"
