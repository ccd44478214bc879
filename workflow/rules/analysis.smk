# SemAlign's analyses (one job per pair): layer CKA before/after alignment, and the semantic-bases check.
rule analyze_semalign:
    input:
        teacher=lambda wc: f"{RUN}/models/{config['pairs'][wc.pair]['teacher']}",
        student=pair_student_dir,
        adapter=lambda wc: f"{RUN}/adapters/semalign/{wc.pair}/{config['semalign']['analysis_task']}/seed{SEEDS[0]}",
        split=analysis_split,
        code=code("scripts/analyze_semalign.py"),
    output:
        cka=report(
            f"{RUN}/analysis/{{pair}}/cka.png",
            caption="../report/cka.rst",
            category="SemAlign analysis",
            labels={"figure": "layer CKA", "pair": "{pair}"},
        ),
        bases=report(
            f"{RUN}/analysis/{{pair}}/bases.png",
            caption="../report/bases.rst",
            category="SemAlign analysis",
            labels={"figure": "semantic bases", "pair": "{pair}"},
        ),
        record=f"{RUN}/analysis/{{pair}}/analysis.json",
    log:
        f"{LOGS}/analyze_semalign/{{pair}}.log",
    benchmark:
        f"{LOGS}/analyze_semalign/{{pair}}.benchmark.tsv"
    params:
        task=config["semalign"]["analysis_task"],
        n_items=config["semalign"]["analysis_items"],
        n_tokens=config["semalign"]["analysis_tokens"],
        models=lambda wc: [config["pairs"][wc.pair]["teacher"], config["pairs"][wc.pair]["student"]],
        max_length=lambda wc: max_length_of(config["pairs"][wc.pair]["student"]),
        device=config["device"],
    threads: 1
    resources:
        **sized("analysis", "teacher", "student"),
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/analyze_semalign.py"


rule analyses:
    input:
        expand(f"{RUN}/analysis/{{pair}}/{{file}}", pair=PAIRS, file=["cka.png", "bases.png", "analysis.json"])
        if "semalign" in config["methods"]
        else [],
