# Toy: the generated world's splits and corpora. Paper: the LaTen splits, checked and converted (no corpora;
# the test sets come from lm-eval: the hub, or evaluation.data).
rule prepare_data:
    input:
        code=code("scripts/prepare_data.py", DATA_SOURCES[config["data"]["source"]]),
    output:
        splits=[f"{RUN}/data/{task}/{split}.jsonl" for task in TASKS for split in SPLITS_OF[task]],
        corpora=expand(f"{RUN}/data/corpus/{{corpus}}.jsonl", corpus=CORPORA),
        manifest=f"{RUN}/data/manifest.json",
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{LOGS}/prepare_data.benchmark.tsv"
    params:
        source=config["data"]["source"],
        settings=config["world"] if TOY else config["data"]["paper"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/pkt.yaml"
    message:
        f"Generating the toy world (seed {config['world']['seed']})" if TOY else "Converting the papers' splits"
    script:
        "../../scripts/prepare_data.py"
