localrules:
    tables,
    figures,


rule tables:
    input:
        evals=eval_targets(),
        manifest=rules.prepare_data.output.manifest,  # each result's split is checked against it
        code=code("scripts/tables.py"),
    output:
        csv=report(
            f"{RUN}/tables/main.csv", caption="../report/main_table.rst", category="Tables", labels={"table": "main"}
        ),
        md=f"{RUN}/tables/main.md",
        tex=f"{RUN}/tables/main.tex",
        vs_csv=report(
            f"{RUN}/tables/vs_{config['tables']['reference']}.csv",
            caption="../report/vs_table.rst",
            category="Tables",
            labels={"table": f"vs {config['tables']['reference']}"},
        ),
        vs_md=f"{RUN}/tables/vs_{config['tables']['reference']}.md",
        vs_tex=f"{RUN}/tables/vs_{config['tables']['reference']}.tex",
        metrics=f"{RUN}/metrics.json",
        code_csv=report(  # SemAlign Table 2's layout: teachers of one student
            f"{RUN}/tables/code_teachers.csv",
            caption="../report/code_teachers.rst",
            category="Tables",
            labels={"table": "code teachers"},
        ),
        code_md=f"{RUN}/tables/code_teachers.md",
        code_tex=f"{RUN}/tables/code_teachers.tex",
    log:
        f"{LOGS}/tables.log",
    benchmark:
        f"{LOGS}/tables.benchmark.tsv"
    params:
        pairs=config["pairs"],
        tables=config["tables"],
        caption=table_caption(),
        models=config["models"],  # hub models' repo ids pick the published rows (none for toy models)
        protocol=config["evaluation"].get("protocol", "tulu"),
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/tables.py"


rule figures:
    input:
        evals=eval_targets(),
        adapters=adapter_targets(),
        code=code("scripts/figures.py"),
    output:
        bars=report(
            f"{RUN}/figures/benchmarks.png",
            caption="../report/benchmarks.rst",
            category="Figures",
            labels={"figure": "benchmarks"},
        ),
        curves=report(
            f"{RUN}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Figures",
            labels={"figure": "training curves"},
        ),
        curves_csv=f"{RUN}/training_curves.csv",  # the curves' data, mean per method: `dvc plots show`
    log:
        f"{LOGS}/figures.log",
    benchmark:
        f"{LOGS}/figures.benchmark.tsv"
    params:
        pairs=config["pairs"],
        title=table_caption(),
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/figures.py"
