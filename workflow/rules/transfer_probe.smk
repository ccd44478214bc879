# The transfer probe (pkt.transfer_probe): every teacher-signal channel trained on answerless questions about the
# held-out facts, then scored on them. Toy data only; a target of its own (make transfer-probe), or in the default
# run with transfer_probe.in_default_run.
rule transfer_probe:
    input:
        teacher=pair_teacher_dir,
        student=pair_student_dir,
        test=f"{RUN}/data/{PROBE_TASK}/test.jsonl",
        pairing=f"{RUN}/pairing/{{pair}}/{PROBE_TASK}.json",
        tasks=f"workflow/tasks/{PROBE_TASK}.yaml",
        code=code("scripts/transfer_probe.py", *probe_method_modules()),
    output:
        split=f"{RUN}/transfer_probe/{{pair}}/probe.jsonl",
        results=probe_results(),
    log:
        f"{LOGS}/transfer_probe/{{pair}}.log",
    benchmark:
        f"{LOGS}/transfer_probe/{{pair}}.benchmark.tsv"
    params:
        root=f"{RUN}/transfer_probe/{{pair}}",
        rows=probe_rows(),
        targets={k: config["semalign"][k] for k in ("pairs", "signal", "interpolate", "topk", "targets_dtype")},
        train=lambda wc: {**train_settings(wc)[PROBE_TASK], "epochs": PROBE["epochs"], "max_steps": -1},
        evaluation=config["evaluation"],
        data={"data_files": {"test": f"{RUN}/data/{PROBE_TASK}/test.jsonl"}},
        tasks_dir=lambda wc, input: str(Path(input.tasks).parent),
        seeds=PROBE_SEEDS,
        models=lambda wc: [config["pairs"][wc.pair]["teacher"], config["pairs"][wc.pair]["student"]],
        max_length=lambda wc: max_length_of(config["pairs"][wc.pair]["student"]),
        device=config["device"],
    threads: 1
    resources:
        **sized("transfer_probe", "teacher", "student", units=len(probe_results("x"))),
    conda:
        "../envs/pkt.yaml"
    message:
        with_asks("Transfer probe of {wildcards.pair}: every teacher signal on the held-out facts")
    script:
        "../../scripts/transfer_probe.py"


localrules:
    transfer_table,


rule transfer_table:
    input:
        student=lambda wc: [f"{RUN}/eval/vanilla/{config['pairs'][p]['student']}/{PROBE_TASK}/seed0.json"
                            for p in PAIRS],
        results=[path for pair in PAIRS for path in probe_results(pair)],
        code=code("scripts/transfer_table.py"),
    output:
        csv=report(
            f"{RUN}/tables/transfer_probe.csv",
            caption="../report/transfer_probe.rst",
            category="Tables",
            labels={"table": "transfer probe"},
        ),
        md=f"{RUN}/tables/transfer_probe.md",
        tex=f"{RUN}/tables/transfer_probe.tex",
    log:
        f"{LOGS}/transfer_table.log",
    params:
        pairs=config["pairs"],
        tables=config["tables"],
        caption=lambda wc: f"{table_caption()}. Transfer probe ({PROBE['epochs']} epochs on the probe split, seeds "
        f"{PROBE_SEEDS})",
    conda:
        "../envs/pkt.yaml"
    script:
        "../../scripts/transfer_table.py"


rule transfer_probes:
    input:
        [path for pair in PAIRS for path in probe_results(pair)] if TOY else [],
