"""config/seeking.yaml plans Seeking's own experiment: its four training sets pinned in the reference repository,
one adapter per training set serving every evaluation of it (GSM8K 0- and 8-shot share one), base models."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, copy_workflow, planned_jobs, snakemake
from snakemake.utils import update_config

from pkt.config_checks import config_errors, prepared_tasks, splits_of, train_task_of


def seeking_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(config, yaml.safe_load((REPO / "config" / "seeking.yaml").read_text()))
    return config


def test_each_evaluation_trains_on_its_training_set_and_only_those_splits_are_prepared():
    config = seeking_config()
    train_of = train_task_of(config)
    assert train_of["seeking_gsm8k_0shot"] == train_of["seeking_gsm8k_8shot"] == "seeking_gsm"
    assert sorted(set(train_of.values())) == ["seeking_gsm", "seeking_mmlu", "seeking_superni"]
    tasks = prepared_tasks(config)  # not config.yaml's LaTen files; LIMA for the transfer table's extraction
    assert tasks == ["seeking_gsm", "seeking_mmlu", "seeking_superni", "seeking_lima"]
    config["seeking"]["transfer"] = []
    assert "seeking_lima" not in prepared_tasks(config)
    assert splits_of(config, tasks)["seeking_gsm"] == ["train", "extract"]  # Seeking's release has no align split


def test_a_method_that_aligns_is_refused_on_a_task_without_an_align_split():
    config = seeking_config()
    config["methods"] = ["lora", "semalign"]
    errors = config_errors(config)
    assert "data.paper.files.seeking_gsm: no align split, which ['semalign'] train on" in errors


def test_a_train_task_for_a_task_not_evaluated_is_named():
    config = seeking_config()
    config["evaluation"]["train_task"]["seeking_gsm8k_4shot"] = "seeking_gsm"
    assert "evaluation.train_task.seeking_gsm8k_4shot: 'seeking_gsm8k_4shot' is not one of evaluation.tasks" in \
        config_errors(config)


@pytest.mark.slow
def test_the_seeking_config_plans_one_adapter_per_training_set(tmp_path):
    root = copy_workflow(tmp_path)
    out = snakemake(root, "-n", "--configfile", "config/config.yaml", "config/seeking.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["evaluate"] == jobs["train"] == 2 + 4 + 8 and jobs["extract_seeking"] == 1  # + transfer, ablations
    assert "results/seeking/adapters/seeking/llama2_base/seeking_gsm/seed1" in out
    assert "results/seeking/adapters/seeking/llama2_base/seeking_gsm8k_8shot" not in out
    assert "results/seeking/eval/seeking/llama2_base/seeking_gsm8k_8shot/seed1.json" in out
    assert "paper_mmlu" not in out  # config.yaml's LaTen files are not prepared


def test_seeking_k_is_checked_against_the_training_sets_seed_file():
    config = seeking_config()
    config["seeking"]["k"] = 40
    assert "seeking.k: 40 exceeds the extract split of seeking_gsm: data.paper.files.seeking_gsm.extract " \
           "(gsm/sample_gsm.jsonl, 32 records) has 32 rows" in config_errors(config)


def test_the_llama1_overlay_runs_only_its_pairs_and_their_models():
    from pkt.config_checks import ConfigError, active
    from pkt.methods.seeking.tables import published_rows
    from pkt.report.published import repo_id

    config = seeking_config()
    update_config(config, yaml.safe_load((REPO / "config" / "seeking-llama1.yaml").read_text()))
    run = active(config)
    assert list(run["pairs"]) == ["llama1_13b_7b", "llama1_30b_7b", "llama1_30b_13b"]
    assert sorted(run["models"]) == ["llama1_13b", "llama1_30b", "llama1_7b"]  # not seeking.yaml's Llama-2 models
    assert config_errors(run) == []
    ids = {name: repo_id(m) for name, m in run["models"].items()}
    rows = published_rows(run["pairs"], ids)
    assert sorted(rows) == sorted(run["pairs"]) and "teacher" not in rows["llama1_30b_7b"]  # no vanilla 30B printed
    config["run_pairs"] = ["llama1_65b_7b"]
    with pytest.raises(ConfigError, match=r"run_pairs: \['llama1_65b_7b'\] are not pairs of this config"):
        active(config)
