"""AlpacaFarm (pkt.evaluation.alpaca_farm): the plan-time refusal, the outputs in Open-Instruct's format, the judge
step with a stand-in for alpaca_eval, and the message when alpaca_eval is missing."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pandas as pd
import pytest
from stub_lm import OracleLM

from pkt.evaluation import alpaca_farm as af

ROWS = [
    {"instruction": "What is the capital of France?", "output": "Paris.", "generator": "text_davinci_003",
     "dataset": "helpful_base"},
    {"instruction": "Écris un haïku.", "output": "Un vieil étang", "generator": "text_davinci_003",
     "dataset": "koala"},
    {"instruction": "List three colours.", "output": "Red, green, blue.", "generator": "text_davinci_003",
     "dataset": "oasst"},
]


class RecordingLM(OracleLM):
    """Answers ``respond(doc)`` and keeps each request's (prompt, generation kwargs)."""

    def __init__(self, respond):
        super().__init__(respond=respond)
        self.requests = []

    def generate_until(self, requests):
        self.requests += [r.args for r in requests]
        return super().generate_until(requests)


def enabled(tmp_path, **extra):
    prompts = tmp_path / "alpaca_eval.json"
    prompts.write_text(json.dumps(ROWS))
    return {"seeking_eval": {"alpaca_farm": {"enabled": True, "prompts": str(prompts), **extra}}}


def test_disabled_by_default_and_then_never_refused():
    assert af.settings({})["enabled"] is False
    assert af.plan_errors({}, environ={}) == []
    assert af.plan_errors({"seeking_eval": {"alpaca_farm": {"enabled": False}}}, environ={}) == []


def test_enabled_without_the_key_is_refused_in_one_line_naming_it(tmp_path):
    config = enabled(tmp_path)
    (error,) = af.plan_errors(config, environ={"PATH": "/bin"})
    assert error.startswith("seeking_eval.alpaca_farm.api_key_env:") and "$OPENAI_API_KEY" in error
    assert "\n" not in error
    assert af.plan_errors(config, environ={"OPENAI_API_KEY": ""})  # empty is unset
    assert af.plan_errors(config, environ={"OPENAI_API_KEY": "sk-test"}) == []
    custom = enabled(tmp_path, api_key_env="JUDGE_KEY")
    assert "$JUDGE_KEY" in af.plan_errors(custom, environ={"OPENAI_API_KEY": "sk-test"})[0]
    with pytest.raises(ValueError, match=r"^seeking_eval\.alpaca_farm\.api_key_env: "):
        af.check_plan(config, environ={})


def test_enabled_without_the_prompt_file_is_refused(tmp_path):
    config = {"seeking_eval": {"alpaca_farm": {"enabled": True}}}
    (error,) = af.plan_errors(config, environ={"OPENAI_API_KEY": "k"})
    assert error.startswith("seeking_eval.alpaca_farm.prompts:")
    config["seeking_eval"]["alpaca_farm"]["prompts"] = str(tmp_path / "absent.json")
    assert af.plan_errors(config, environ={"OPENAI_API_KEY": "k"}) == [
        f"seeking_eval.alpaca_farm.prompts: {tmp_path / 'absent.json'} does not exist"]


def test_outputs_are_written_as_open_instructs_run_eval_writes_them(tmp_path):
    lm = RecordingLM(respond=lambda doc: f" Answer to {doc['instruction']}")
    summary = af.run(lm, enabled(tmp_path), tmp_path / "out", "llama2-7b-lima", environ={"OPENAI_API_KEY": "k"},
                     evaluate=lambda **kw: (pd.DataFrame({"win_rate": [50.0]}, index=["llama2-7b-lima-greedy-long"]),
                                            None))
    prompts = [args[0] for args in lm.requests]
    assert prompts == [f"<|user|>\n{r['instruction']}\n<|assistant|>\n" for r in ROWS]  # Tulu, no BOS
    assert all(args[1] == {"until": [], "do_sample": False, "max_gen_toks": 8192} for args in lm.requests)
    path = tmp_path / "out" / "llama2-7b-lima-greedy-long-output.json"
    expected = "".join(json.dumps({**r, "output": f" Answer to {r['instruction']}",
                                   "generator": "llama2-7b-lima-greedy-long"}) + "\n" for r in ROWS)
    assert path.read_text(encoding="utf-8") == expected  # one ASCII-escaped json.dumps per line, keys in place
    assert '"\\u00c9cris' in path.read_text()
    assert list(json.loads(path.read_text().splitlines()[0])) == ["instruction", "output", "generator", "dataset"]
    assert summary["outputs"] == str(path) and summary["reference"] == ["text_davinci_003"]
    assert summary["win_rate"] == 50.0 and summary["n_total"] is None and summary["prompts"] == 3


def test_the_judge_is_called_as_run_eval_calls_it_against_the_prompt_files_reference(tmp_path):
    calls = {}

    def evaluate(**kwargs):
        calls.update(kwargs)
        board = pd.DataFrame({"win_rate": [24.64], "standard_error": [1.5], "n_total": [805]},
                             index=["m-greedy-long"])
        return board, []

    records = af.model_outputs(ROWS, ["a", "b", "c"], "m")
    result = af.judge(records, ROWS, "alpaca_eval_gpt4_0314", tmp_path, evaluate=evaluate)
    assert result == {"win_rate": 24.64, "standard_error": 1.5, "n_total": 805.0}
    assert calls["model_outputs"] == records and calls["reference_outputs"] == ROWS
    assert calls["annotators_config"] == "alpaca_eval_gpt4_0314" and calls["is_return_instead_of_print"] is True
    assert calls["caching_path"] == str(tmp_path / "alpaca_eval_annotator_cache.json")


def test_a_missing_alpaca_eval_names_the_package_after_the_outputs_are_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "alpaca_eval", None)  # import fails
    with pytest.raises(af.AlpacaEvalMissing, match="pip install alpaca-eval") as info:
        af.run(OracleLM(respond=lambda d: "x"), enabled(tmp_path), tmp_path / "o", "m", environ={"OPENAI_API_KEY": "k"})
    assert "m-greedy-long-output.json" in str(info.value)
    assert (tmp_path / "o" / "m-greedy-long-output.json").is_file()


def test_generation_stays_within_the_models_context():
    lm = SimpleNamespace(max_length=2048, tok_encode=lambda text: list(range(len(text))))
    assert af.generation_budget(lm, ["x" * 100, "y" * 300]) == 2048 - 300
    assert af.generation_budget(lm, ["x"], cap=512) == 512
    assert af.generation_budget(OracleLM(), ["x"]) == 8192  # a stub without max_length: Open-Instruct's cap
    with pytest.raises(ValueError, match="max_length"):
        af.generation_budget(lm, ["z" * 2048])


def test_prompt_rows_need_an_instruction(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "no instruction"}) + "\n")
    with pytest.raises(ValueError, match="row 0 has no string 'instruction'"):
        af.load_prompts(bad)
    lines = tmp_path / "rows.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert af.load_prompts(lines) == ROWS


def test_a_judged_run_becomes_an_eval_result_that_fills_seekings_alpacafarm_column(tmp_path):
    """run's summary -> an eval result (fractions, as lm-eval's) -> the AlpacaFarm column of Table 1, in %; with
    all seven columns present the row gets its Avg."""
    from pkt.methods.seeking.tables import COLUMNS, main_table

    result = af.result_of({"judge": "j", "prompts": 805, "win_rate": 24.64, "standard_error": 1.5})
    assert result["task"] == "alpaca_farm" and result["n"] == 805 and result["value"] == pytest.approx(0.2464)
    assert result["metrics"] == {"win_rate,none": pytest.approx(0.2464), "win_rate_stderr,none": pytest.approx(0.015)}
    with pytest.raises(ValueError, match="returned no win_rate"):
        af.result_of({"judge": "j", "prompts": 805, "win_rate": None})
    metrics = {"seeking_gsm8k_0shot": {"exact_match,none": 0.1}, "seeking_gsm8k_8shot": {"exact_match,none": 0.2},
               "seeking_mmlu_0shot": {"acc,none": 0.3}, "seeking_mmlu_5shot": {"acc,none": 0.4},
               "seeking_superni": {"exact_match,none": 0.5, "rougeL,none": 0.6}}
    paths = []
    for task, values in [*metrics.items(), ("alpaca_farm", result["metrics"])]:
        paths.append(tmp_path / f"{task}.json")
        paths[-1].write_text(json.dumps({"method": "seeking", "pair": "p", "task": task, "seed": 1,
                                         "metrics": values}))
    table = main_table(paths, {"p": {"teacher": "t", "student": "s"}})
    assert list(table.columns) == [*COLUMNS, "Avg"]
    assert table.loc[("p", "seeking"), "AlpacaFarm"] == pytest.approx(24.64)
    assert table.loc[("p", "seeking"), "Avg"] == pytest.approx((10 + 20 + 30 + 40 + 50 + 60 + 24.64) / 7)


@pytest.mark.slow
def test_enabled_it_plans_a_judge_job_per_row_and_trains_every_row_on_lima(tmp_path, monkeypatch):
    """With the key and the prompts, every row (lora, seeking, the transfer and ablation rows) gets LIMA adapters
    and one alpaca_farm job; Seeking's tables wait for the win rates."""
    from conftest import copy_workflow, planned_jobs, snakemake

    root = copy_workflow(tmp_path)
    (root / "alpaca.json").write_text(json.dumps(ROWS))
    (root / "on.yaml").write_text("seeking_eval: {alpaca_farm: {enabled: true, prompts: alpaca.json}}\n")
    args = ("-n", "--configfile", "config/config.yaml", "config/seeking.yaml", "on.yaml")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = snakemake(root, *args).stdout
    assert planned_jobs(out)["alpaca_farm"] == 2 + 4 + 8
    assert "results/seeking/adapters/seeking_layers_first/llama2_base/seeking_lima/seed1" in out
    assert "results/seeking/eval/seeking_from_seeking_gsm/llama2_base/alpaca_farm/seed3.json" in out
    monkeypatch.delenv("OPENAI_API_KEY")
    refused = snakemake(root, *args, check=False)
    assert refused.returncode != 0 and "$OPENAI_API_KEY is not set" in refused.stdout
