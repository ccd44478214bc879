"""The workflow as a user meets it: lint, dry runs, the smoke DAG, reruns, and bad config."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
import yaml
from conftest import REPO, copy_workflow, planned_jobs, smoke_config, snakemake
from snakemake.utils import update_config, validate

from pkt.config_checks import ConfigError, check_config
from pkt.config_schema import check_schema, load_schema, schema_problems
from pkt.runtime import CPU_PINS

pytestmark = pytest.mark.slow


def test_lint_is_clean(tmp_path):
    out = snakemake(copy_workflow(tmp_path), "--lint").stdout
    assert "Congratulations, your workflow is in a good condition!" in out


def test_dry_run_of_default_config_plans_the_whole_dag(tmp_path):
    jobs = planned_jobs(snakemake(copy_workflow(tmp_path), "-n").stdout)
    assert jobs["prepare_data"] == 1
    assert jobs["prepare_tokenizer"] == 1
    assert jobs["prepare_model"] == 2
    assert jobs["probe"] == 2
    assert jobs["score_importance"] == 2 and jobs["pair_layers"] == 1  # one job per model / pair, every task
    assert jobs["extract_seeking"] == jobs["teacher_targets"] == 1
    assert jobs["train"] == 7  # (lora, seeking, semalign, semalign_cosine, laten, kd, fitnet) x 1 pair: every seed's
    assert jobs["evaluate"] == 7  # and task's adapter in one job; the same seven: every seed and task, one model load
    assert jobs["evaluate_vanilla"] == 2  # teacher, student
    assert jobs["semalign_ablation"] == jobs["analyze_semalign"] == jobs["ablation_table"] == 1
    assert jobs["tables"] == jobs["figures"] == 1
    assert "transfer_probe" not in jobs  # a target of its own (transfer_probe.in_default_run: false)


def test_smoke_dag_writes_every_stage(smoke_run):
    run = smoke_run / "results" / "smoke"
    for model in ("teacher", "student"):
        figures = json.loads((run / "models" / model / "training.json").read_text())
        assert figures["steps"] > 0 and figures["final_loss"] > 0
        assert (run / "models" / model / "model.safetensors").is_file()
        probe = json.loads((run / "probe" / f"{model}.json").read_text())
        assert probe["n_held_out"] + probe["n_control"] == 24
    manifest = json.loads((run / "data" / "manifest.json").read_text())
    assert "toy_mmlu/test.jsonl" in manifest["files"]
    methods = ("lora", "seeking", "semalign", "semalign_cosine", "laten", "kd", "fitnet")
    trained = [(m, "toy", seed) for m in methods for seed in (0, 1)]
    for method, pair, seed in [("vanilla", "teacher", 0), ("vanilla", "student", 0), *trained]:
        for task in ("toy_mmlu", "toy_gsm8k", "toy_humaneval", "toy_mbpp"):
            result = json.loads((run / "eval" / method / pair / task / f"seed{seed}.json").read_text())
            assert result["n"] == len(result["items"]["score"]) == (24 if task == "toy_mmlu" else 8)
            provenance = json.loads((run / "models" / result["model"]["name"] / "provenance.json").read_text())
            assert result["model"]["identity"] == provenance["identity"]  # computed once, by prepare_model
            assert result["lm_eval_version"] and result["config_hash"]
            # One CPU code path (pkt.runtime.CPU_PINS), in the evaluation and the pretraining of the model.
            assert result["cpu"]["capability"] == provenance["cpu"]["capability"] == "AVX2"
            assert result["cpu"]["pins"] == provenance["cpu"]["pins"] == CPU_PINS
            assert (result["adapter"] is None) == (method == "vanilla")
            if method != "vanilla":
                assert result["adapter"]["path"].endswith(f"adapters/{method}/toy/{task}/seed{seed}")
            assert bool(result["subsets"]) == (task == "toy_mmlu")
            assert (run / "eval" / method / pair / task / f"seed{seed}.samples.jsonl").stat().st_size > 0
    pairing = json.loads((run / "pairing" / "toy" / "toy_mmlu.json").read_text())
    assert pairing["n_teacher"] == 4 and pairing["n_student"] == 2
    assert (run / "pairing" / "toy" / "toy_mmlu.png").stat().st_size > 0
    main = (run / "tables" / "main.md").read_text()
    rows = ("LoRA", "Seeking", "SemAlign", "SemAlign (cosine map)", "LaTen", "KD", "FitNet")
    assert all(f"| {row}" in main for row in rows) and " ± " in main
    assert "MMLU held-out" in main and "MMLU control" in main
    versus = (run / "tables" / "vs_lora.md").read_text()
    assert "| Student" in versus and "| Seeking" in versus and "| LoRA" not in versus and "paired bootstrap" in versus
    assert json.loads((run / "metrics.json").read_text())["toy/teacher/Gap to teacher"] == 0.0
    assert (run / "figures" / "training_curves.png").stat().st_size > 0
    extracted = json.loads((run / "extract" / "toy" / "toy_gsm8k" / "extract.json").read_text())
    assert len(extracted["kept_layers"]) == 2 and extracted["k"] == 8 and extracted["rank"] == 8
    assert (run / "extract" / "toy" / "toy_gsm8k" / "sensitivity.png").stat().st_size > 0
    adapter = run / "adapters" / "seeking" / "toy" / "toy_mmlu" / "seed0"
    wide = json.loads((adapter / "adapter_config.json").read_text())
    assert wide["r"] == 16 and wide["lora_alpha"] == 32  # rank 2r: [B', -B0], [A'; A0] on the vanilla student
    index = json.loads((run / "targets" / "toy" / "toy_mbpp" / "index.json").read_text())
    assert index["n_examples"] == 16 and index["layers"] == [index["pairs"][0]["student"]]
    semalign = json.loads((run / "adapters" / "semalign" / "toy" / "toy_mbpp" / "seed1" / "adapter_config.json")
                          .read_text())
    assert semalign["layers_to_transform"] == [index["layers"][0] - 1]
    laten = run / "adapters" / "laten" / "toy" / "toy_gsm8k" / "seed1"
    injected = json.loads((laten / "training.json").read_text())
    assert len(injected["translator_log"]) == 4 and injected["plan"]["up"]["units"] == 6  # int(64 x 0.1)
    assert json.loads((laten / "adapter_config.json").read_text())["rank_pattern"]["v_proj"] == 3  # int(32 x 0.1)
    assert (run / "targets" / "toy" / "toy_mbpp" / f"teacher{index['layers'][0]}.npy").is_file()  # the rows
    assert (run / "targets" / "toy" / "toy_mbpp" / "maps.safetensors").is_file()  # and both maps
    assert index["positions"] == "predicting"
    ablation = (run / "tables" / "semalign_ablation.md").read_text()
    assert "as configured (logit map, v1" in ablation and "layer term only" in ablation and "cosine map" in ablation
    assert "vs configured" in ablation
    probe = (run / "tables" / "transfer_probe.md").read_text()  # smoke.yaml puts the probe in the default run
    assert all(f"| {row}" in probe for row in ("Student", "KD", "SemAlign (logit map)", "FitNet"))
    assert "vs LoRA" in probe
    split = [json.loads(line) for line in (run / "transfer_probe" / "toy" / "probe.jsonl").read_text().splitlines()]
    assert len(split) == 2 * 18 and {r["messages"][1]["content"] for r in split} == {""}  # 18 held-out facts x 2
    kd = json.loads((run / "transfer_probe" / "toy" / "kd" / "seed0.json").read_text())
    assert kd["n"] == 24 and kd["subsets"]["held_out"]["n"] == 18 and kd["probe"]["signal"].startswith("teacher")
    analysis = json.loads((run / "analysis" / "toy" / "analysis.json").read_text())
    assert len(analysis["cka_before"]) == 4 and len(analysis["cka_before"][0]) == 2
    assert (run / "analysis" / "toy" / "cka.png").stat().st_size > 0
    assert not (run / "checkpoints").exists() or not any((run / "checkpoints").rglob("checkpoint-*"))
    leftovers = [p for p in run.rglob("*.tmp")]
    assert leftovers == []


def test_finished_dag_has_nothing_to_do(smoke_run):
    start = time.perf_counter()
    out = snakemake(smoke_run, "--configfile", "config/smoke.yaml").stdout
    print(f"no-op snakemake took {time.perf_counter() - start:.2f}s")
    assert "Nothing to be done" in out


def test_changing_a_prepare_model_key_reruns_only_that_model_and_descendants(smoke_run):
    change = smoke_run / "change.yaml"
    change.write_text(yaml.safe_dump({"models": {"student": {"pretrain": {"lr": 0.005}}}}))
    out = snakemake(smoke_run, "-n", "--configfile", "config/smoke.yaml", str(change)).stdout
    assert planned_jobs(out) == {"prepare_model": 1, "probe": 1, "score_importance": 1, "pair_layers": 1,
                                 "extract_seeking": 1, "teacher_targets": 1, "train": 7, "evaluate": 7,
                                 "evaluate_vanilla": 1, "semalign_ablation": 1, "analyze_semalign": 1,
                                 "ablation_table": 1, "transfer_probe": 1, "transfer_table": 1, "tables": 1,
                                 "figures": 1, "all": 1}
    assert "model=teacher" not in out and "pair=teacher" not in out


def test_changing_a_train_key_reruns_only_train_evaluate_tables_figures(smoke_run):
    change = smoke_run / "change-train.yaml"
    change.write_text(yaml.safe_dump({"train": {"lr": 0.002}}))
    out = snakemake(smoke_run, "-n", "--configfile", "config/smoke.yaml", str(change)).stdout
    assert planned_jobs(out) == {"train": 6, "evaluate": 6, "semalign_ablation": 1, "analyze_semalign": 1,
                                 "ablation_table": 1, "transfer_probe": 1, "transfer_table": 1, "tables": 1,
                                 "figures": 1, "all": 1}
    assert "method=vanilla" not in out and "method=laten" not in out  # LaTen does not fine-tune


def test_changing_a_seeking_key_reruns_only_seeking(smoke_run):
    change = smoke_run / "change-seeking.yaml"
    change.write_text(yaml.safe_dump({"seeking": {"layers": "last"}}))
    out = snakemake(smoke_run, "-n", "--configfile", "config/smoke.yaml", str(change)).stdout
    assert planned_jobs(out) == {"extract_seeking": 1, "train": 1, "evaluate": 1, "tables": 1, "figures": 1,
                                 "all": 1}
    assert "method=lora" not in out and "method=vanilla" not in out


def test_changing_one_task_file_reruns_only_the_jobs_that_read_it(smoke_run):
    """At one job per model, a task YAML edit reruns the evaluations (every task of them) and the tables."""
    task = smoke_run / "workflow" / "tasks" / "toy_gsm8k.yaml"
    text, stat = task.read_text(), task.stat()
    task.write_text(text + "\n")
    try:
        out = snakemake(smoke_run, "-n", "--configfile", "config/smoke.yaml").stdout
    finally:
        task.write_text(text)
        os.utime(task, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(out) == {"evaluate": 7, "evaluate_vanilla": 2, "ablation_table": 1, "transfer_table": 1,
                                 "tables": 1, "figures": 1, "all": 1}


BAD_CONFIGS = [
    ({"world": {"n_entitiez": 3}}, "n_entitiez"),
    ({"world": {"n_entities": "many"}}, "many"),
    ({"world": {"student_fraction": 1.5}}, "1.5"),
    ({"models": {"student": {"tokenizer": "other"}}}, "pairs.toy: teacher 'teacher' uses tokenizer"),
    ({"pairs": {"toy": {"teacher": "giant"}}}, "pairs.toy.teacher: no model named 'giant'"),
    ({"models": {"student": {"num_heads": 3}}}, "models.student: hidden_size 32 is not divisible"),
    ({"tables": {"reference": "lroa"}}, "tables.reference: 'lroa' is not a row of the table"),
    ({"models": {"student": {"num_layers": 5}}}, "seeking, which needs the teacher's num_layers (4)"),
    ({"seeking": {"structure": "blocks"}}, "blocks"),
    ({"laten": {"rate": 0.01}}, "laten.rate: 0.01 selects no unit of pairs.toy's student (intermediate_size 64)"),
    ({"kd": {"alpha": 2}}, "alpha"),
]


SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize(("override", "message"), BAD_CONFIGS)
def test_bad_config_is_rejected_naming_the_key(override, message):
    """The Snakefile's checks, in this process: the JSON schema (every problem on a line), then the
    cross-references."""
    config = smoke_config()
    update_config(config, override)  # as --configfile does
    with pytest.raises(ConfigError) as error:
        check_schema(config, SCHEMA)
        validate(config, schema=str(SCHEMA), set_default=True)
        check_config(config)
    assert message in str(error.value)
    heading, *problems = str(error.value).splitlines()  # a heading and a line per problem: no schema dump
    assert heading.startswith("invalid config") and 1 <= len(problems) <= 2
    assert all(line.startswith("  ") and ": " in line for line in problems)


def test_every_schema_problem_is_one_line_naming_the_key_with_a_hint():
    config = smoke_config()
    update_config(config, {"world": {"n_entitiez": 3, "n_entities": "many"}, "train": {"lr": "1e-3"},
                           "semalign": {"map": "dual"}, "seeds": [0, -1]})
    problems = schema_problems(config, load_schema(SCHEMA))
    assert problems == [
        "seeds[1]: -1 is out of range (must be >= 0)",
        "semalign.map: 'dual' is not one of logit, cosine",
        "train.lr: '1e-3' is not of type number (YAML reads 1e-3 as a string: write it with a decimal point, "
        "1.0e-3)",
        "world.n_entitiez: unknown key (did you mean 'n_entities'?)",
        "world.n_entities: 'many' is not of type integer",
    ]
    with pytest.raises(ConfigError, match=r"invalid config \(5 problems"):
        check_schema(config, SCHEMA)


@pytest.mark.parametrize(("override", "message"), [BAD_CONFIGS[0], BAD_CONFIGS[-2]])
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, override, message):
    root = copy_workflow(tmp_path)
    (root / "bad.yaml").write_text(yaml.safe_dump(override))
    proc = snakemake(root, "--configfile", "config/smoke.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert not (root / "results").exists()
    # Snakemake's two lines, its "ConfigError in file", the heading, a line per problem, two traceback lines
    problems = int(re.search(r"invalid config \((\d+) problem", proc.stdout).group(1))
    assert len(proc.stdout.strip().splitlines()) <= 6 + problems, proc.stdout


def test_a_one_method_config_plans_its_tables_against_the_student(tmp_path):
    """methods: [kd] (no lora): tables.reference null picks the student, so the README's one-method run plans."""
    root = copy_workflow(tmp_path)
    (root / "kd.yaml").write_text(yaml.safe_dump({"methods": ["kd"]}))
    out = snakemake(root, "tables", "-n", "--configfile", "config/smoke.yaml", "kd.yaml").stdout
    assert planned_jobs(out)["train"] == 1 and "results/smoke/tables/vs_student.md" in out


def test_missing_config_file_is_named(tmp_path):
    proc = snakemake(copy_workflow(tmp_path), "--configfile", "config/nowhere.yaml", check=False)
    assert proc.returncode != 0 and "nowhere.yaml" in proc.stdout
