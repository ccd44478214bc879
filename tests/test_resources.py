"""Cluster resources sized from the configured models (pkt.resources), and what the profiles ask for."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import CPU_RULES, LOCAL_RULES, REPO, copy_workflow, planned_jobs, snakemake
from standin import OVERLAYS, configfiles, shipped
from transformers import LlamaConfig, LlamaForCausalLM

from pkt.methods import base_method
from pkt.resources import STAGES, job_resources, parameter_count
from pkt.rows import ablation_rows

LLAMA2_7B = {"hidden_size": 4096, "num_layers": 32, "num_heads": 32, "intermediate_size": 11008}
LLAMA2_13B = {"hidden_size": 5120, "num_layers": 40, "num_heads": 40, "intermediate_size": 13824}
TOY = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("kv_heads", [None, 2])
def test_parameter_count_is_exact_for_a_built_llama(kv_heads):
    arch = {"hidden_size": 64, "num_layers": 3, "num_heads": 4, "intermediate_size": 96}
    if kv_heads:
        arch["num_key_value_heads"] = kv_heads
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=kv_heads or 4, tie_word_embeddings=False))
    assert parameter_count(arch, 300) == sum(p.numel() for p in model.parameters())


def test_parameter_count_of_llama2_matches_the_published_sizes():
    assert parameter_count(LLAMA2_7B, 32000) == 6_738_415_616
    assert parameter_count(LLAMA2_13B, 32000) == 13_015_864_320


@pytest.mark.parametrize("stage", sorted(set(STAGES) - {"snapshot"}))
def test_a_13b_teacher_asks_for_more_than_the_toy_one(stage):
    toy = parameter_count(TOY["models"]["teacher"], TOY["tokenizer"]["vocab_size"])
    big = parameter_count(LLAMA2_13B, 32000)
    for gpu in (False, True):
        small, large = job_resources(stage, [toy], 4, gpu), job_resources(stage, [big], 4, gpu)  # e.g. 4 tasks
        assert large["mem_mb"] > small["mem_mb"] and large["runtime"] > small["runtime"]
        assert small["gpu"] == large["gpu"] == int(gpu)
    assert small["runtime"] == STAGES[stage].floor  # a toy job gets the stage's floor


def test_a_hub_snapshot_asks_for_download_time_not_memory():
    toy = job_resources("snapshot", [parameter_count(TOY["models"]["teacher"], TOY["tokenizer"]["vocab_size"])])
    big = job_resources("snapshot", [parameter_count(LLAMA2_13B, 32000)])
    assert big["mem_mb"] == toy["mem_mb"] and big["runtime"] > toy["runtime"]  # no model is loaded


def test_time_grows_with_units_of_work_and_host_memory_with_every_model_on_cpu():
    seven = parameter_count(LLAMA2_7B, 32000)
    one, eight = job_resources("train", [seven], units=1), job_resources("train", [seven], units=8)
    assert eight["runtime"] == pytest.approx(8 * one["runtime"], abs=8)  # each rounded up to a minute
    alone, both = job_resources("targets", [seven]), job_resources("targets", [seven, seven])
    assert both["mem_mb"] > alone["mem_mb"]
    on_gpu = job_resources("targets", [seven, seven], gpu=True)  # only one checkpoint staged at a time
    assert on_gpu["mem_mb"] < both["mem_mb"]


def test_bad_requests_are_named():
    with pytest.raises(ValueError, match="unknown stage 'trian'"):
        job_resources("trian", [1])
    with pytest.raises(ValueError, match="train: a job needs at least one model"):
        job_resources("train", [])




def job_resources_listed(output: str) -> list[tuple[str | None, str]]:
    """(rule, resources) of every job a dry run lists: a ``rule X:`` block's resources line, or the
    ``[gpu=..., ...]`` a rule's message ends with (rule None: Snakemake prints the message instead)."""
    found, rule = [], None
    for line in output.splitlines():
        if match := re.match(r"^\s*rule (\w+):$", line):
            rule = match.group(1)
        elif rule and (match := re.match(r"^\s*resources: (.*)$", line)):
            found.append((rule, match.group(1)))
        elif match := re.match(r"^\s*Job \d+: .*\[(gpu=.*)\]$", line):
            found.append((None, match.group(1)))
    return found


def expected_jobs(config: dict) -> dict[str, int]:
    """Jobs per rule that a config implies (the pipeline's granularity: one train and one evaluate job per
    method and pair, one importance job per model, one extraction/targets job per pair)."""
    hub = config["data"]["source"] == "paper"
    models = {n for n, m in config["models"].items() if ("hub" in m) == hub}
    pairs = {n: p for n, p in config["pairs"].items() if p["teacher"] in models}
    if config.get("run_pairs"):  # seeking-llama1.yaml over seeking.yaml: only its pairs and their models
        pairs = {n: pairs[n] for n in config["run_pairs"]}
        models = {p[role] for p in pairs.values() for role in ("teacher", "student")}
    methods = config["methods"]
    runs = {base_method(m) for m in methods}  # semalign_cosine runs semalign
    seeking = config.get("seeking", {})
    rows = len(methods) + len(seeking.get("transfer") or []) + len(ablation_rows(seeking.get("ablation") or []))
    vanilla = {p[role] for p in pairs.values() for role in ("teacher", "student")}
    jobs = {"prepare_data": 1, "prepare_model": len(models), "score_importance": len(models),
            "pair_layers": len(pairs), "train": rows * len(pairs), "evaluate": rows * len(pairs),
            "evaluate_vanilla": len(vanilla), "extract_seeking": len(pairs) * ("seeking" in runs),
            "teacher_targets": len(pairs) * bool({"semalign", "kd", "fitnet"} & runs),
            "tables": 1, "figures": 1}
    if not hub:
        jobs.update(prepare_tokenizer=1, probe=len(models))
    return {rule: n for rule, n in jobs.items() if n}


@pytest.mark.slow
@pytest.mark.parametrize("overlay", ["", *OVERLAYS])
def test_slurm_dry_run_of_every_shipped_config_asks_a_gpu_for_every_model_job(tmp_path, overlay):
    root = copy_workflow(tmp_path)
    args = ("--configfile", *configfiles(overlay)) if overlay else ()
    out = snakemake(root, *args, "--workflow-profile", "profiles/slurm", "-n").stdout
    planned, listed = planned_jobs(out), job_resources_listed(out)
    config = shipped(overlay)
    assert {rule: n for rule, n in planned.items() if rule in expected_jobs(config)} == expected_jobs(config)
    hub = config["data"]["source"] == "paper"
    cpu = CPU_RULES | LOCAL_RULES | ({"prepare_model"} if hub else set())  # hub models: a download, no GPU
    model_jobs = sum(n for rule, n in planned.items() if rule not in cpu)
    assert sum("gpu=1" in line for _, line in listed) == model_jobs > 5  # seeking.yaml: 9 (two methods)
    for rule, line in listed:
        if rule is not None:
            assert ("gpu=1" in line) == (rule not in cpu), (rule, line)
        assert re.search(r"mem_mb=\d+", line) and "runtime=" in line, line


def runtimes(output: str, message: str) -> list[int]:
    """The runtime each job whose message starts with ``message`` asks for, in a dry run's listing."""
    return [int(m.group(1)) for m in re.finditer(rf"Job \d+: {re.escape(message)}.*runtime=(\d+) min\]", output)]


@pytest.mark.slow
def test_paper_scale_jobs_fit_the_clusters_limit_and_laten_is_sized_by_its_translator_steps(tmp_path):
    """paper.yaml on the SLURM profile (max_runtime 2,880 min): the SemAlign ablation, ~54 h in one job, runs as a
    job per variant, each under the limit; LaTen asks for its translator steps (2+4+3+8 per seed), not for a
    fine-tuning's epochs; without a limit (a laptop) the ablation stays one job."""
    root = copy_workflow(tmp_path)
    out = snakemake(root, "--configfile", "config/paper.yaml", "--workflow-profile", "profiles/slurm", "-n").stdout
    config = shipped("paper.yaml")
    limit = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())["config"]
    limit = int(next(entry for entry in limit if entry.startswith("max_runtime=")).split("=")[1])
    split = runtimes(out, "SemAlign ablation of llama2")
    assert len(split) == planned_jobs(out)["semalign_ablation"] == 6 and max(split) <= limit
    sizes = [parameter_count(config["models"][m], 32000) for m in ("llama2_13b_chat", "llama2_7b_chat")]
    whole = job_resources("ablation", sizes, units=6 * len(config["semalign"]["ablation"]["seeds"] or config["seeds"]),
                          gpu=True)
    assert whole["runtime"] > limit  # what one job would ask
    steps = sum(task["steps"] for task in config["laten"]["tasks"].values())
    assert runtimes(out, "Training laten") == [job_resources("laten", sizes, units=steps * len(config["seeds"]),
                                                             gpu=True)["runtime"]]
    assert runtimes(out, "Training laten")[0] < runtimes(out, "Training lora")[0]
    assert "WARNING" not in out
    local = snakemake(root, "--configfile", "config/paper.yaml", "-n").stdout
    assert planned_jobs(local)["semalign_ablation"] == 1


@pytest.mark.slow
def test_a_job_over_max_runtime_is_named_before_the_run(tmp_path):
    root = copy_workflow(tmp_path)
    out = snakemake(root, "--configfile", "config/paper.yaml", "--workflow-profile", "profiles/slurm", "-n",
                    "--config", "max_runtime=500").stdout
    train = runtimes(out, "Training lora")[0]
    assert train > 500
    assert (f"WARNING: a train job (method=lora, pair=llama2) is estimated at {train} min, over max_runtime "
            "500 min") in out
    assert "(method=laten, pair=llama2)" not in out  # LaTen's 168 min fit
