"""The paper tasks against Open-Instruct's own output at the pinned commit (tests/fixtures/open_instruct.json).

The fixture was written by running Open-Instruct's evaluation scripts (tests/fixtures/make_open_instruct.py):
their prompts for every MMLU, GSM8K and HumanEval item, their generation settings, their GSM8K predictions
and verdicts on hand-made outputs, and their pass@k estimator. Here the project's tasks must reproduce each,
byte for byte, through lm-eval where a metric is involved.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from paper_data import humaneval_rows, mmlu_rows
from stub_lm import OracleLM

from pkt.evaluation import open_instruct as oi
from pkt.evaluation.evaluate import run_task, task_config
from pkt.evaluation.tasks import declared_samples, tulu_prompt
from pkt.io import read_jsonl
from pkt.report.published import PUBLISHED

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TASKS_DIR = ROOT / "workflow" / "tasks"
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "open_instruct.json").read_text())
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent")


def digest(texts: list[str]) -> str:
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()


def assert_prompts(expected: dict, prompts: list[str]) -> None:
    """Every example string first (a readable diff), then all prompts by their digest."""
    for i, text in expected["examples"].items():
        assert prompts[int(i)] == text
    assert len(prompts) == expected["count"]
    assert digest(prompts) == expected["sha256"]


def test_the_fixture_is_the_commit_the_protocol_names():
    assert FIXTURE["provenance"]["commit"] == oi.OPEN_INSTRUCT["commit"]
    for task in ("paper_mmlu", "paper_gsm8k", "paper_humaneval"):
        assert task_config(TASKS_DIR, task)["metadata"]["open_instruct"] == oi.OPEN_INSTRUCT["commit"]


@needs_data
def test_mmlu_prompts_equal_open_instructs_for_all_14042_questions():
    prompts = [tulu_prompt("paper_mmlu")(doc) for doc in mmlu_rows(DATA)]
    assert_prompts(FIXTURE["mmlu"], prompts)
    assert "about  abstract algebra.\n\n" in prompts[0]  # format_subject's leading space


def test_an_option_pandas_reads_as_missing_prints_nan():
    pandas = pytest.importorskip("pandas")
    assert oi.PANDAS_NA == pandas._libs.parsers.STR_NA_VALUES  # the set Open-Instruct's pandas read_csv uses
    doc = {"subject": "college_mathematics", "question": " How many? ", "choices": ["None", "One", "NA", "Two"]}
    assert oi.mmlu_user(doc).endswith("\n\n How many? \nA. nan\nB. One\nC. nan\nD. Two\nAnswer:")


@needs_data
def test_gsm8k_prompts_and_decoding_equal_open_instructs():
    prompts = [tulu_prompt("paper_gsm8k")(doc) for doc in read_jsonl(DATA / "gsm8k" / "test.jsonl")]
    assert_prompts(FIXTURE["gsm8k"], prompts)
    gen = task_config(TASKS_DIR, "paper_gsm8k")["generation_kwargs"]
    ref = FIXTURE["gsm8k"]["generation"]
    assert ref["stop_id_sequences"] is None and gen["until"] == []  # the chat format stops at EOS only
    assert (gen["do_sample"], gen["max_gen_toks"]) == (ref["do_sample"], ref["max_new_tokens"])


def test_gsm8k_scoring_agrees_with_open_instruct_on_hand_made_outputs(tmp_path):
    cases = FIXTURE["gsm8k"]["scoring"]
    assert len(cases) >= 15
    data = tmp_path / "gsm.jsonl"
    data.write_text("".join(json.dumps(c["doc"]) + "\n" for c in cases))
    outputs = {c["doc"]["question"]: c["output"] for c in cases}
    summary, samples = run_task(OracleLM(respond=lambda d: outputs[d["question"]]), "paper_gsm8k", TASKS_DIR,
                                data={"data_files": {"test": str(data)}})
    ours = {s["doc"]["question"]: s for s in samples if s["filter"] == "open-instruct"}
    for case in cases:
        sample = ours[case["doc"]["question"]]
        assert sample["target"] == case["target"], case
        assert sample["filtered_resps"][0] == case["prediction"], case
        assert sample["exact_match"] == float(case["correct"]), case
    assert summary["metric"] == "exact_match"
    assert summary["items"]["score"] == [float(c["correct"]) for c in cases]
    # The second, named metric reads the number after "So the answer is" before any rambling, and compares
    # numbers: it differs from Open-Instruct's exactly on these outputs.
    phrase = {c["output"]: s["number_match"] for c in cases for s in samples
              if s["filter"] == "answer-phrase" and s["doc"]["question"] == c["doc"]["question"]}
    differs = {out for out in phrase if phrase[out] != float(next(c["correct"] for c in cases if c["output"] == out))}
    assert differs == {"So the answer is 18.00",
                       "So the answer is 8.\n\nQuestion: Tom has 3 cats and 5 dogs. How many pets?",
                       "So the answer is 5.", "So the answer is 18.5",
                       "So the answer is 10\n\nThat is 10 minutes, not 0.",
                       "So the answer is 7 apples and 2 pears.", "The price is 12,5 euros.",
                       "So the answer is \u22125."}


@needs_data
def test_humaneval_prompts_and_sampling_equal_open_instructs():
    prompts = [tulu_prompt("paper_humaneval")(doc) for doc in humaneval_rows(DATA)]
    assert_prompts(FIXTURE["humaneval"], prompts)
    cfg = task_config(TASKS_DIR, "paper_humaneval")
    ref, gen = FIXTURE["humaneval"], cfg["generation_kwargs"]
    assert cfg["repeats"] == ref["samples_per_problem"] == 20
    assert (gen["do_sample"], gen["temperature"], gen["top_p"], gen["max_gen_toks"]) == (
        ref["generation"]["do_sample"], ref["generation"]["temperature"], ref["generation"]["top_p"],
        ref["generation"]["max_new_tokens"])
    assert tuple(gen["until"]) == oi.CODEX_STOPS == tuple(ref["stops"])
    assert ref["pass_at_k_reported"] == [1]


def test_pass_at_k_is_the_closed_form_of_chen_et_al():
    for case in FIXTURE["humaneval"]["pass_at_k"]:
        assert oi.pass_at_k(case["n"], case["c"], case["k"]) == pytest.approx(case["value"], abs=1e-12)
    assert oi.pass_at_k(20, 7, 1) == pytest.approx(7 / 20)
    with pytest.raises(ValueError, match="c <= n"):
        oi.pass_at_k(20, 21, 1)


@needs_data
def test_a_problem_scores_the_share_of_its_twenty_samples_that_pass(tmp_path):
    rows = humaneval_rows(DATA)[:3]
    data = tmp_path / "he.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    passing = {rows[0]["task_id"]: 7, rows[1]["task_id"]: 20, rows[2]["task_id"]: 0}
    calls: dict[str, int] = {}

    def respond(doc):  # the first `passing` samples of a problem are its canonical body, the rest empty
        calls[doc["task_id"]] = calls.get(doc["task_id"], 0) + 1
        return doc["canonical_solution"] if calls[doc["task_id"]] <= passing[doc["task_id"]] else ""

    summary, samples = run_task(OracleLM(respond=respond), "paper_humaneval", TASKS_DIR,
                                data={"data_files": {"test": str(data)}})
    assert sorted(calls.values()) == [20, 20, 20] and summary["samples_per_item"] == 20
    assert summary["items"]["score"] == [7 / 20, 1.0, 0.0]
    assert summary["value"] == pytest.approx((7 / 20 + 1) / 3)
    assert summary["reference"] == oi.OPEN_INSTRUCT
    greedy, _ = run_task(OracleLM(respond=lambda d: d["canonical_solution"]), "paper_humaneval", TASKS_DIR,
                         data={"data_files": {"test": str(data)}},
                         sampling={"paper_humaneval": {"samples": 1, "temperature": 0}})
    assert greedy["samples_per_item"] == 1 and greedy["value"] == 1.0
    assert greedy["generation"]["do_sample"] is False and "temperature" not in greedy["generation"]


def test_greedy_decoding_with_several_samples_is_refused():
    with pytest.raises(ValueError, match="evaluation.sampling.paper_humaneval"):
        run_task(OracleLM(), "paper_humaneval", TASKS_DIR,
                 sampling={"paper_humaneval": {"samples": 5, "temperature": 0}})


def test_mbpp_signature_cuts_at_the_first_colon_as_laten_does():
    code = "class Node: \r\n\tdef __init__(self, data): \r\n\t\tself.data = data \r\ndef get_height(root):\r\n\tpass"
    assert oi.mbpp_signature(code) == "class Node"  # MBPP test item 367
    code = "import re\r\ndef change_date_format(dt):\r\n  return dt"
    assert oi.mbpp_signature(code) == "import re\r\ndef change_date_format(dt)"


@needs_data
def test_mbpp_prompts_equal_the_prompts_of_latens_splits():
    """LaTen's MBPP splits hold its prompts verbatim: rendering their MBPP records gives them back."""
    mbpp = {d["text"]: d for d in read_jsonl(DATA / "mbpp" / "mbpp.jsonl")}
    checked = 0
    for path in sorted((DATA / "paper_splits" / "mbpp").glob("*.jsonl")):
        for record in read_jsonl(path):
            user = record["messages"][0]["content"]
            text = user.removeprefix("Complete the following python function.\n\n\n").rsplit("\n", 1)[0]
            head = "Complete the following python function.\n\n\n"
            for candidate in [t for t in mbpp if user.startswith(f"{head}{t}\n")]:
                if oi.mbpp_user(mbpp[candidate]) == user:
                    checked += 1
                    break
            else:
                pytest.fail(f"{path.name}: no MBPP record renders {user[:120]!r} ({text[:40]!r})")
    assert checked >= 300


def paper_protocol_samples() -> dict[str, int]:
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    sampling = config["evaluation"].get("sampling") or {}
    return {task: declared_samples(TASKS_DIR, task, sampling) for task in config["evaluation"]["tasks"]}


ITEMS = {"MMLU": ("paper_mmlu", 14042), "GSM8K": ("paper_gsm8k", 1319), "HumanEval": ("paper_humaneval", 164),
         "MBPP": ("paper_mbpp", 500)}


def test_the_published_single_runs_are_reachable_under_the_configured_protocol():
    """Every vanilla (student, teacher) and LaTen number is a count of 0/1 verdicts over the full test sets
    under the configured protocol; ten of SemAlign's own and its Seeking reproductions' numbers are not
    (no count of 1,319 GSM8K, 3,280 HumanEval or 500 MBPP verdicts rounds to them: means over runs, or
    another item set, which the paper does not say)."""
    samples = paper_protocol_samples()
    assert samples["paper_humaneval"] == 20
    unreachable, checked = set(), 0
    for rows in PUBLISHED.values():
        for name, row in rows.items():
            for benchmark, value in row.scores.items():
                task, items = ITEMS[benchmark]
                checked += 1
                if not oi.reachable(value, items, samples[task]):
                    assert name in ("seeking", "semalign"), (row.source, name, benchmark, value)
                    unreachable.add((name, benchmark, value))
    assert checked == 44
    assert unreachable == {("seeking", "GSM8K", 28.23), ("seeking", "HumanEval", 15.44),
                           ("seeking", "HumanEval", 16.05), ("seeking", "HumanEval", 15.04),
                           ("semalign", "GSM8K", 19.21), ("semalign", "HumanEval", 17.34),
                           ("semalign", "HumanEval", 19.46), ("semalign", "MBPP", 18.78),
                           ("semalign", "MBPP", 22.35), ("semalign", "MBPP", 21.18)}
    # The vanilla 7B/13B HumanEval values need 20 samples: 461/3280 and 615/3280; greedy cannot give them.
    assert oi.reachable(14.05, 164, 20) and oi.reachable(18.75, 164, 20)
    assert not oi.reachable(14.05, 164, 1) and not oi.reachable(18.75, 164, 1)
    assert oi.reachable(16.07, 1319) and oi.reachable(17.80, 500) and not oi.reachable(17.70, 500)


def test_a_generation_decodes_as_it_reads_after_the_prompt_with_a_llama_tokenizer():
    """Open-Instruct decodes prompt + output and cuts the prompt off; decoding a Llama continuation alone drops
    the first token's space, and a HumanEval body's first line loses one of its four spaces."""
    from types import SimpleNamespace

    from sp_llama import sp_llama

    from pkt.evaluation.evaluate import continuation_hflm

    tok = sp_llama()
    prompt = tulu_prompt("paper_humaneval")({"prompt": "def f(x):\n    \"\"\"Double x.\"\"\"\n"})
    body = "    return 2 * x\n"
    ids = tok(prompt + body)["input_ids"]
    cont = ids[len(tok(prompt)["input_ids"]):]
    assert tok.decode(ids, skip_special_tokens=True)[len(prompt):] == body  # Open-Instruct's cut
    assert tok.decode(cont, skip_special_tokens=True) != body  # decoded alone: "   return 2 * x\n"
    assert continuation_hflm().tok_decode(SimpleNamespace(tokenizer=tok), cont) == body


def test_sampling_for_a_task_not_evaluated_or_greedy_copies_is_named_before_any_job():
    from pkt.config_checks import active, config_errors

    config = active(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    config["evaluation"]["sampling"] = {"paper_humaneval": {"samples": 20, "temperature": 0.1},
                                        "toy_humaneval": {"samples": 4, "temperature": 0}}
    errors = config_errors(config)
    assert "evaluation.sampling.paper_humaneval: 'paper_humaneval' is not one of evaluation.tasks" in errors
    assert any(e.startswith("evaluation.sampling.toy_humaneval: 4 greedy samples") for e in errors)


def test_an_evaluate_job_is_sized_by_the_generations_its_tasks_draw():
    assert [declared_samples(TASKS_DIR, t) for t in ITEMS_ORDER] == [1, 1, 20, 1]
    assert declared_samples(TASKS_DIR, "paper_humaneval", {"paper_humaneval": {"samples": 1}}) == 1
    assert declared_samples(TASKS_DIR, "toy_humaneval") == 1


ITEMS_ORDER = ["paper_mmlu", "paper_gsm8k", "paper_humaneval", "paper_mbpp"]
