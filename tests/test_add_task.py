"""An open set of evaluation tasks (README: Add a task): a new task YAML plans its whole DAG, is scored by the
metric its YAML names, and gets a table column named after it; a misnamed task is refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, copy_workflow, planned_jobs, smoke_config, snakemake
from stub_lm import OracleLM

from pkt.config_checks import config_errors, task_file_errors
from pkt.data.records import write_split
from pkt.evaluation.evaluate import primary_metric, run_task, task_config
from pkt.evaluation.tasks import UnknownTask, declared_samples, prompt_protocol, registered_config
from pkt.report.columns import column_of, extra_columns, extras_note
from pkt.report.tables import formatted, load_items, load_results, main_table, vs_reference, write_tables

TASKS_DIR = REPO / "workflow" / "tasks"
PAPER = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["data"]["paper"]


def add_task(tasks_dir: Path, name: str, like: str, **changes) -> Path:
    """``workflow/tasks/<name>.yaml``: a copy of task ``like``'s YAML under a new name (its ``task:`` key too)."""
    text = (TASKS_DIR / f"{like}.yaml").read_text().replace(f"task: {like}\n", f"task: {name}\n")
    assert f"task: {name}\n" in text
    cfg_lines = [f"{key}: {json.dumps(value)}\n" for key, value in changes.items()]
    path = tasks_dir / f"{name}.yaml"
    path.write_text(text + "".join(cfg_lines))
    return path


# --------------------------------------------------------------------------- the DAG


def test_a_new_task_yaml_with_its_splits_plans_the_whole_dag(tmp_path):
    """README's recipe: the YAML in workflow/tasks, its splits in data.paper.files, its name in evaluation.tasks;
    beside it a task lm-eval registers (arc_easy), with splits of its own and no YAML."""
    root = copy_workflow(tmp_path)
    add_task(root / "workflow" / "tasks", "paper_arith", like="paper_gsm8k")
    gsm = PAPER["files"]["paper_gsm8k"]
    overlay = {"methods": ["lora", "semalign"],
               "semalign": {"analysis_task": "paper_arith", "ablation": {"task": "paper_arith"}},
               "evaluation": {"tasks": ["paper_gsm8k", "paper_arith", "arc_easy"]},
               "data": {"paper": {"files": {"paper_arith": gsm, "arc_easy": gsm}}}}
    (root / "arith.yaml").write_text(yaml.safe_dump(overlay))
    out = snakemake(root, "-n", "--configfile", "config/paper.yaml", "arith.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == 2 and jobs["evaluate"] == 2 and jobs["evaluate_vanilla"] == 2  # lora, semalign
    for task in ("paper_arith", "arc_easy"):
        assert f"results/paper/eval/semalign/llama2/{task}/seed1.json" in out
        assert f"results/paper/eval/vanilla/llama2_7b_chat/{task}/seed0.json" in out
        assert f"results/paper/importance/llama2_13b_chat/{task}.json" in out  # its extract split is used
        assert f"results/paper/targets/llama2/{task}" in out  # and its align split
    assert "results/paper/tables/main.md" in out


def test_evaluated_tasks_are_checked_against_their_yamls_in_one_line_each(tmp_path):
    add_task(tmp_path, "paper_arith", like="paper_gsm8k")
    shutil.copy(TASKS_DIR / "paper_mmlu.yaml", tmp_path / "paper_letters.yaml")  # its task: is still paper_mmlu
    add_task(tmp_path, "mc_quiz", like="toy_mmlu")
    evaluation = {"tasks": ["paper_arith", "arc_easy", "paper_nothing", "paper_letters"],
                  "sampling": {"paper_arith": {"samples": 2, "temperature": 0.5}, "mc_quiz": {"samples": 2}}}
    assert task_file_errors(evaluation, tmp_path) == [
        "evaluation.sampling.mc_quiz: mc_quiz does not generate (output_type multiple_choice); sampling applies "
        "to generate_until tasks",
        f"evaluation.tasks[2]: 'paper_nothing' is neither a YAML in {tmp_path.parent.name}/{tmp_path.name} "
        "(paper_nothing.yaml) nor an lm-eval task (toy_*/paper_* are this project's own; README: Add a task)",
        f"evaluation.tasks[3]: {tmp_path.parent.name}/{tmp_path.name}/paper_letters.yaml names task 'paper_mmlu'; "
        "a task's YAML is named after its task: key, which lm-eval reports it under",
    ]
    config = smoke_config()  # the shipped toy tasks all have their YAMLs; a misspelt one is named
    assert not [e for e in config_errors(config, TASKS_DIR) if e.startswith("evaluation.tasks[")]
    config["evaluation"]["tasks"] = ["toy_mmlu", "toy_gsm8kk"]
    assert [e for e in config_errors(config, TASKS_DIR) if e.startswith("evaluation.tasks[")] == [
        "evaluation.tasks[1]: 'toy_gsm8kk' is neither a YAML in workflow/tasks (toy_gsm8kk.yaml) nor an lm-eval "
        "task (toy_*/paper_* are this project's own; README: Add a task)"]


def test_a_task_without_a_yaml_is_sized_as_greedy_and_refused_at_evaluation_when_lm_eval_lacks_it():
    assert declared_samples(TASKS_DIR, "arc_easy") == 1
    assert declared_samples(TASKS_DIR, "arc_easy", {"arc_easy": {"samples": 3}}) == 3
    assert declared_samples(TASKS_DIR, "paper_humaneval") == 20  # its YAML's repeats
    with pytest.raises(UnknownTask, match="no lm-eval task 'paper_nothing'"):  # not looked up: ours, no YAML
        task_config(TASKS_DIR, "paper_nothing")


# --------------------------------------------------------------------------- the metric


@pytest.fixture
def arith(tmp_path):
    """A new task 'arith' (a copy of toy_gsm8k's YAML) in a tasks folder of its own, and a test split for it."""
    from conftest import small_world

    from pkt.data.toyworld import generate

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shutil.copy(TASKS_DIR / "utils.py", tasks / "utils.py")  # its !function tags
    add_task(tasks, "arith", like="toy_gsm8k")
    split, records = tmp_path / "test.jsonl", generate(small_world()).splits["toy_gsm8k"]["test"]
    write_split(split, records, prefix="arith-test")
    return tasks, split, len(records)


def test_a_new_task_is_scored_by_the_metric_its_yaml_names(arith):
    tasks, split, n = arith
    gold = OracleLM(respond=lambda d: d["answer"])
    summary, _ = run_task(gold, "arith", tasks, data={"data_files": {"test": str(split)}})
    assert (summary["task"], summary["metric"], summary["value"], summary["n"]) == ("arith", "exact_match", 1.0, n)
    assert n == 8 and summary["metrics"]["exact_match,final-number"] == 1.0  # the smoke world's split; its filter
    yaml_text = (tasks / "arith.yaml").read_text()  # the same task scored by another metric: its YAML says which
    (tasks / "arith2.yaml").write_text(yaml_text.replace("task: arith\n", "task: arith2\n").replace(
        "  - {metric: exact_match,", "  - {metric: !function utils.number_match,"))
    summary, _ = run_task(gold, "arith2", tasks, data={"data_files": {"test": str(split)}})
    assert (summary["metric"], summary["value"]) == ("number_match", 1.0)
    assert "number_match,final-number" in summary["metrics"] and "exact_match,final-number" not in summary["metrics"]
    assert summary["protocol"] == "the task's own prompt, 0-shot" == prompt_protocol("arith", "tulu")
    assert prompt_protocol("toy_gsm8k", "tulu") == "toy chat format" and prompt_protocol("paper_mbpp", "x") == "x"
    wrong = OracleLM(respond=lambda d: f"#### {d['answer_value'] + 1}")
    assert run_task(wrong, "arith", tasks, data={"data_files": {"test": str(split)}})[0]["value"] == 0.0


def test_without_a_metric_list_the_headline_is_what_lm_eval_reports():
    cfg = {"task": "t", "output_type": "multiple_choice"}  # lm-eval's defaults: acc, then acc_norm
    reported = {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.1, "acc_norm,none": 0.6}
    assert primary_metric(cfg, reported) == "acc,none"
    assert primary_metric({**cfg, "metric_list": [{"metric": "acc_norm"}]}, reported) == "acc_norm,none"
    with pytest.raises(ValueError, match="task t: no metric_list"):
        primary_metric(cfg, {"alias": "t"})


@pytest.mark.slow
def test_a_task_lm_eval_registers_is_read_from_its_own_yaml_and_groups_are_refused():
    """Indexing lm-eval's ~13,000 tasks takes seconds: only a name without a YAML pays it, at evaluation."""
    cfg = task_config(TASKS_DIR, "arc_easy")
    assert cfg["task"] == "arc_easy" and cfg["output_type"] == "multiple_choice"
    assert primary_metric(cfg) == "acc,none"  # its metric_list's first: acc (then acc_norm)
    with pytest.raises(UnknownTask, match="'mmlu' is an lm-eval group, not a task"):
        registered_config("mmlu")
    with pytest.raises(UnknownTask, match="no lm-eval task 'no_such_task_anywhere'"):
        registered_config("no_such_task_anywhere")


# --------------------------------------------------------------------------- the tables

PAIRS = {"toy": {"teacher": "big", "student": "small"}}


def write_eval(root: Path, method: str, pair: str, task: str, seed: int, scores: list[float]) -> Path:
    path = root / method / pair / task / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"method": method, "pair": pair, "task": task, "seed": seed, "n": len(scores),
                                "value": sum(scores) / len(scores),
                                "items": {"id": [f"{task}-{i}" for i in range(len(scores))], "score": scores}}))
    return path


def test_column_names_keep_the_four_benchmarks_and_name_any_other_task():
    assert [column_of(t) for t in ("toy_mmlu", "paper_gsm8k", "humaneval", "paper_mbpp")] == [
        "MMLU", "GSM8K", "HumanEval", "MBPP"]
    assert [column_of(t) for t in ("paper_arith", "toy_arith", "arc_easy", "gsm8k_cot", "paper_")] == [
        "arith", "arith", "arc_easy", "gsm8k_cot", "paper_"]
    with pytest.raises(ValueError, match="'toy_Average': its column would be named 'Average'"):
        column_of("toy_Average")
    assert extra_columns(["MMLU", "MMLU held-out", "arith", "Average", "arith control", "zeta"]) == [
        "arith", "arith control", "zeta"]


@pytest.fixture
def evals(tmp_path):
    """Student, teacher and two LoRA seeds on toy GSM8K and on a new task 'paper_arith' (10 items each)."""
    paths = []
    for method, pair, seed, gsm, arith in [("vanilla", "small", 0, 2, 1), ("vanilla", "big", 0, 6, 9),
                                           ("lora", "toy", 0, 4, 3), ("lora", "toy", 1, 4, 5)]:
        paths.append(write_eval(tmp_path, method, pair, "toy_gsm8k", seed, [1.0] * gsm + [0.0] * (10 - gsm)))
        paths.append(write_eval(tmp_path, method, pair, "paper_arith", seed, [1.0] * arith + [0.0] * (10 - arith)))
    return paths


def test_a_new_task_gets_its_own_column_outside_average_and_gap(evals, tmp_path):
    table = main_table(load_results(evals, PAIRS))
    mean = table["mean"]
    assert mean.loc[("toy", "teacher"), "arith"] == pytest.approx(90.0)
    assert mean.loc[("toy", "lora"), "arith"] == pytest.approx(40.0)  # seeds 30 and 50
    assert mean.loc[("toy", "lora"), "Average"] == pytest.approx(40.0)  # GSM8K alone, not (40 + 40) / 2
    assert mean.loc[("toy", "student"), "Gap to teacher"] == pytest.approx(40.0)  # |60 - 20|, arith's 80 left out
    shown = formatted(table)
    assert list(shown.columns) == ["Model", "GSM8K", "Average", "Gap to teacher", "arith", "Seeds"]
    assert shown["arith"].tolist() == ["10.00", "90.00", "40.00 ± 14.14"]
    out = tmp_path / "out"
    write_tables(table, out / "m.csv", out / "m.md", out / "m.tex", out / "metrics.json", "Run x")
    md = (out / "m.md").read_text()
    assert md.startswith(f"Run x. {extras_note(['arith'])}\n")
    assert "arith is a task besides the papers' four benchmarks" in md and "over MMLU, GSM8K, HumanEval" in md
    assert pd.read_csv(out / "m.csv").columns.tolist()[-3:] == ["arith", "Seeds", "identical_to"]
    assert json.loads((out / "metrics.json").read_text())["toy/lora/arith"] == 40.0
    versus = vs_reference(load_items(evals, PAIRS), reference="lora", n_boot=200)
    assert list(versus["diff"].columns) == ["GSM8K", "arith"]
    assert versus.loc[("toy", "teacher"), ("diff", "arith")] == pytest.approx(50.0)


def test_tables_without_a_new_task_are_as_before(evals):
    table = main_table(load_results([p for p in evals if "paper_arith" not in p.parts], PAIRS))
    assert list(formatted(table).columns) == ["Model", "GSM8K", "Average", "Gap to teacher", "Seeds"]
    assert extras_note(table["mean"].columns) == ""
