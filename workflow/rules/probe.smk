rule probe:
    input:
        model=f"{RUN}/models/{{model}}",
        facts=f"{RUN}/data/toy_mmlu/test.jsonl",
        code=code("scripts/probe.py"),
    output:
        f"{RUN}/probe/{{model}}.json",
    log:
        f"{LOGS}/probe/{{model}}.log",
    benchmark:
        f"{LOGS}/probe/{{model}}.benchmark.tsv"
    params:
        batch_size=config["probe"]["batch_size"],
        device=config["device"],
    threads: 1
    resources:
        **sized("probe", "model"),
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/probe.py"


rule probes:
    input:
        expand(f"{RUN}/probe/{{model}}.json", model=MODELS),
