rule prepare_data:
    input:
        code=lib("toyworld", "toycode", "data", "io"),
    output:
        splits=expand(f"{RUN}/data/{{task}}/{{split}}.jsonl", task=TASKS, split=SPLITS),
        corpora=expand(f"{RUN}/data/corpus/{{corpus}}.jsonl", corpus=CORPORA),
        manifest=f"{RUN}/data/manifest.json",
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{LOGS}/prepare_data.benchmark.tsv"
    params:
        world=config["world"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/pkt.yaml"
    message:
        "Generating the toy world (seed {params.world[seed]})"
    script:
        "../../scripts/prepare_data.py"
