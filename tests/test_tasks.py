"""Task helpers and the toy tasks' metric path through lm-eval, with answers known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stub_lm import OracleLM

from pkt.data.records import write_split
from pkt.data.toyworld import generate
from pkt.evaluation.evaluate import primary_metric, run_task, task_config
from pkt.evaluation.tasks import extract_code, final_number, humaneval_program, mbpp_program, normalise_number

TASKS_DIR = Path(__file__).resolve().parents[1] / "workflow" / "tasks"


@pytest.mark.parametrize(
    ("text", "number"),
    [("2 + 3 = 5.\n#### 5", "5"), ("So the answer is 1,234.", "1234"), ("It costs $7.50.", "7.5"),
     ("-3 degrees", "-3"), ("no number", ""), ("#### 12\nThen 99", "12"), ("18.0", "18")],
)
def test_final_number(text, number):
    assert final_number(text) == number


def test_normalise_number_keeps_non_numbers():
    assert normalise_number("1,000") == "1000"
    assert normalise_number("abc") == "abc"


def test_extract_code_from_fence_or_plain_text():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1\n"
    assert extract_code("def f():\n    return 1\n[DONE] trailing") == "def f():\n    return 1\n"
    assert extract_code("    return x\n") == "    return x\n"


def test_humaneval_program_accepts_a_body_or_a_whole_function():
    doc = {"prompt": "import math\ndef f(x):\n    \"\"\"doc\"\"\"\n", "entry_point": "f",
           "test": "def check(c):\n    assert c(4) == 2\n"}
    body = humaneval_program(doc, "    return int(math.sqrt(x))\n")
    whole = humaneval_program(doc, "```python\ndef f(x):\n    return int(math.sqrt(x))\n```")
    for program in (body, whole):
        namespace: dict = {}
        exec(program, namespace)  # noqa: S102 - a known, harmless program


def test_mbpp_program_joins_code_setup_and_tests():
    doc = {"test_list": ["assert g(1) == 2"], "test_setup_code": "K = 1"}
    program = mbpp_program(doc, "def g(x):\n    return x + K")
    exec(program, {})  # noqa: S102
    assert program.index("def g") < program.index("K = 1") < program.index("assert g(1)")


def test_task_config_points_data_at_absolute_files(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text("{}\n")
    cfg = task_config(TASKS_DIR, "paper_gsm8k", {"data_files": {"test": str(f)}})
    assert cfg["dataset_path"] == "json" and "dataset_name" not in cfg
    assert cfg["dataset_kwargs"]["data_files"] == {"test": str(f.resolve())}
    assert primary_metric(cfg) == "exact_match,open-instruct"
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        task_config(TASKS_DIR, "paper_gsm8k", {"data_files": {"test": str(tmp_path / "missing.jsonl")}})
    with pytest.raises(FileNotFoundError, match="paper_nothing"):
        task_config(TASKS_DIR, "paper_nothing")


@pytest.fixture(scope="module")
def toy_tests(tmp_path_factory):
    from conftest import small_world

    world = generate(small_world())
    root = tmp_path_factory.mktemp("toy")
    paths = {}
    for task in ("toy_mmlu", "toy_gsm8k", "toy_humaneval", "toy_mbpp"):
        paths[task] = root / f"{task}.jsonl"
        write_split(paths[task], world.splits[task]["test"], prefix=f"{task}-test")
    return paths


def evaluate(task, path, lm):
    return run_task(lm, task, TASKS_DIR, data={"data_files": {"test": str(path)}})


def test_toy_mmlu_oracle_scores_one_and_anti_oracle_zero(toy_tests):
    summary, samples = evaluate("toy_mmlu", toy_tests["toy_mmlu"], OracleLM(gold=lambda d: d["choices"][d["answer"]]))
    assert summary["value"] == 1.0 and summary["n"] == len(samples) > 0
    wrong = OracleLM(gold=lambda d: d["choices"][(d["answer"] + 1) % 4])
    assert evaluate("toy_mmlu", toy_tests["toy_mmlu"], wrong)[0]["value"] == 0.0


def test_toy_gsm8k_gold_answers_score_one(toy_tests):
    summary, _ = evaluate("toy_gsm8k", toy_tests["toy_gsm8k"], OracleLM(respond=lambda d: d["answer"]))
    assert summary["value"] == 1.0
    off_by_one = OracleLM(respond=lambda d: f"#### {d['answer_value'] + 1}")
    assert evaluate("toy_gsm8k", toy_tests["toy_gsm8k"], off_by_one)[0]["value"] == 0.0


@pytest.mark.parametrize(("value", "target"), [(2.0, "2"), (7.5, "7.5"), (12, "12"), ("1,000", "1000"), (-3.0, "-3")])
def test_toy_gsm8k_target_is_normalised_as_predictions_are(value, target):
    from pkt.evaluation.tasks import toy_gsm8k_target

    assert toy_gsm8k_target({"answer_value": value}) == target == final_number(f"So #### {target}")


def test_toy_gsm8k_float_answers_match_the_extracted_number(toy_tests, tmp_path):
    """A float gold value (2.0) is scored against the extracted "2": str() of it ("2.0") never matched."""
    docs = [json.loads(line) for line in toy_tests["toy_gsm8k"].read_text().splitlines()]
    floated = tmp_path / "float.jsonl"
    floated.write_text("".join(json.dumps({**d, "answer_value": float(d["answer_value"])}) + "\n" for d in docs))
    respond = OracleLM(respond=lambda d: f"#### {int(d['answer_value'])}")
    assert evaluate("toy_gsm8k", floated, respond)[0]["value"] == 1.0


@pytest.mark.parametrize(("task", "field"), [("toy_humaneval", "canonical_solution"), ("toy_mbpp", "code")])
def test_toy_code_references_pass_and_wrong_code_fails_with_reasons_kept(toy_tests, task, field):
    summary, samples = evaluate(task, toy_tests[task], OracleLM(respond=lambda d: d[field]))
    assert summary["value"] == 1.0
    summary, samples = evaluate(task, toy_tests[task], OracleLM(respond=lambda d: "    return None\n"))
    assert summary["value"] == 0.0
    verdict = json.loads(samples[0]["filtered_resps"][0])
    assert verdict["status"] != "pass" and verdict["reason"]


def test_items_and_held_out_control_subsets_are_known(toy_tests):
    """An oracle that knows only the control facts: 1.0 on controls, 0.0 on held-out facts, per item."""
    from pkt.io import read_jsonl

    docs = read_jsonl(toy_tests["toy_mmlu"])
    knows_controls = OracleLM(
        gold=lambda d: d["choices"][d["answer"] if d["known_by_student"] else (d["answer"] + 1) % 4]
    )
    summary, _ = evaluate("toy_mmlu", toy_tests["toy_mmlu"], knows_controls)
    items = summary["items"]
    assert items["id"] == [d["id"] for d in docs]
    assert items["group"] == ["control" if d["known_by_student"] else "held_out" for d in docs]
    assert items["score"] == [1.0 if d["known_by_student"] else 0.0 for d in docs]
    n_control = sum(d["known_by_student"] for d in docs)
    assert summary["subsets"] == {"held_out": {"value": 0.0, "n": len(docs) - n_control},
                                  "control": {"value": 1.0, "n": n_control}}
    assert summary["value"] == pytest.approx(n_control / len(docs))
    gsm, _ = evaluate("toy_gsm8k", toy_tests["toy_gsm8k"], OracleLM(respond=lambda d: d["answer"]))
    assert gsm["subsets"] == {} and set(gsm["items"]["group"]) == {None} and set(gsm["items"]["score"]) == {1.0}


@pytest.mark.parametrize(
    ("text", "number"),
    [("The answer is 42.\n\nQuestion: Tom has 3 cats and 5 dogs", "42"),  # rambling after the answer
     ("Answer: 6 + 2 = 8. So the answer is 8.\nQuestion: 9 apples", "8"),
     ("between 10-20 people", "20"), ("\u22125 degrees", "-5"), (".5 of a pie", "0.5"),
     ("the items 3,4", "4"), ("total 1,234,567", "1234567"), ("x-3 = 2", "2")],
)
def test_answer_phrase_before_last_number_and_number_edge_cases(text, number):
    assert final_number(text) == number


def test_paper_gsm8k_stops_only_at_eos_as_open_instructs_chat_format_does():
    cfg = task_config(TASKS_DIR, "paper_gsm8k")
    assert cfg["generation_kwargs"]["until"] == []  # lm-eval adds the tokenizer's EOS
    assert [f["name"] for f in cfg["filter_list"]] == ["open-instruct", "answer-phrase"]


def test_a_byte_level_generation_decodes_the_same_in_context():
    """The toy tokenizer is byte-level: the anchored decode of the evaluation's HFLM changes nothing there."""
    from types import SimpleNamespace

    from pkt.data.tokenizer import train_tokenizer
    from pkt.evaluation.evaluate import continuation_hflm

    tok = train_tokenizer(["def f(x):\n    return 2 * x\n", "So the answer is 8."] * 20, vocab_size=300)
    decode = continuation_hflm().tok_decode
    for text in ("    return 2 * x\n", " So the answer is 8.", "\n\nQuestion"):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert decode(SimpleNamespace(tokenizer=tok), ids) == tok.decode(ids) == text


def test_code_fence_with_any_language_tag():
    assert extract_code("```python3\ndef f():\n    return 1\n```") == "def f():\n    return 1\n"
    assert extract_code("```Python \ndef f():\n    return 2\n```") == "def f():\n    return 2\n"


def test_identical_programs_run_once_per_process(monkeypatch):
    """run_code gives a program seen before (another seed's identical completion) that run's verdict."""
    from pkt.evaluation import tasks
    from pkt.evaluation.sandbox import run as sandbox

    ran: list[str] = []

    def fake_run_programs(programs, workers=1):
        ran.extend(programs)
        return [sandbox.SandboxResult("pass" if "ok" in p else "fail", "stub", 0.0) for p in programs]

    monkeypatch.setattr(sandbox, "run_programs", fake_run_programs)
    monkeypatch.setattr(tasks, "_VERDICTS", {})
    first = tasks.run_code(["x = 'ok-1'", "x = 'bad'"])
    second = tasks.run_code(["x = 'bad'", "x = 'ok-2'", "x = 'ok-1'"])
    assert ran == ["x = 'ok-1'", "x = 'bad'", "x = 'ok-2'"]  # each distinct program once
    assert second[0] == first[1] and second[2] == first[0]
    assert [json.loads(v)["status"] for v in second] == ["fail", "pass", "pass"]
