rule prepare_tokenizer:
    input:
        corpora=rules.prepare_data.output.corpora,
        code=code("scripts/prepare_tokenizer.py"),
    output:
        directory(f"{RUN}/tokenizer"),
    log:
        f"{LOGS}/prepare_tokenizer.log",
    benchmark:
        f"{LOGS}/prepare_tokenizer.benchmark.tsv"
    params:
        tokenizer=config["tokenizer"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/prepare_tokenizer.py"


# Toy models are pretrained from scratch; hub models are snapshotted (pkt.models.hub) and their identity recorded once.
rule prepare_model:
    input:
        unpack(model_inputs),
        code=code("scripts/prepare_model.py"),
    output:
        directory(f"{RUN}/models/{{model}}"),
    log:
        f"{LOGS}/prepare_model/{{model}}.log",
    benchmark:
        f"{LOGS}/prepare_model/{{model}}.benchmark.tsv"
    params:
        model=lookup(dpath="models/{model}", within=config),
        device=config["device"],
    threads: 1
    resources:
        **prepare_resources(),
    conda:
        "../envs/pkt.yaml"
    message:
        with_asks("Preparing {wildcards.model}")
    script:
        "../../scripts/prepare_model.py"
