"""The papers' published numbers, as data, for the tables to show beside the reproduced ones.

Source: SemAlign v1 (arXiv 2510.24208v1) Table 1 / Table 2, which follows LaTen's protocol: Open-Instruct
prompts, Tulu chat format, 0-shot (MMLU and GSM8K accuracy, HumanEval and MBPP pass@1, in %). Table 1 is
Llama-2-13B-chat -> Llama-2-7B-chat on the four benchmarks (its Seeking and LaTen rows are SemAlign's
reproductions under that protocol); Table 2 gives HumanEval/MBPP for the code teachers CodeLlama-13B-Python
and WizardCoder-13B-Python with the same student. Only numbers those tables print are here (none derived,
none filled in): a benchmark a table does not report is absent.

Keys are hub repo ids (teacher, student), then the table row (student, teacher, seeking, laten, semalign),
then the benchmark. The vanilla student of the code-teacher pairs is the same Llama-2-7B-chat under the
same protocol, so its row there is Table 1's (and says so in its source). Toy models have no repo id and
so no published numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from pkt.evaluation.tasks import PROTOCOLS  # protocol name -> label, defined beside the protocols themselves

LLAMA2_13B_CHAT: Final = "meta-llama/Llama-2-13b-chat-hf"
LLAMA2_7B_CHAT: Final = "meta-llama/Llama-2-7b-chat-hf"
CODELLAMA_13B_PYTHON: Final = "codellama/CodeLlama-13b-Python-hf"
WIZARDCODER_13B_PYTHON: Final = "WizardLMTeam/WizardCoder-Python-13B-V1.0"  # the paper's WizardCoder-13B-Python
# Older names of the same hub repos (the WizardLM organisation was renamed WizardLMTeam; the hub redirects).
ALIASES: Final = MappingProxyType({"wizardlm/wizardcoder-python-13b-v1.0": WIZARDCODER_13B_PYTHON})

SOURCE: Final = "SemAlign v1 (arXiv 2510.24208v1)"
PAPER_PROTOCOL: Final = "tulu"  # the protocol of every published number


@dataclass(frozen=True)
class PublishedRow:
    """One row of a published table: where it is printed, and its scores (%) by benchmark name."""

    source: str  # e.g. "SemAlign Table 1"
    scores: Mapping[str, float]


@dataclass(frozen=True)
class PublishedCell:
    """A published score that applies to one (pair, row, benchmark) cell of this run's tables."""

    pair: str
    row: str
    benchmark: str
    value: float
    source: str


def _row(source: str, **scores: float) -> PublishedRow:
    return PublishedRow(source, MappingProxyType(scores))


def _code(humaneval: float, mbpp: float) -> PublishedRow:
    return _row("SemAlign Table 2", HumanEval=humaneval, MBPP=mbpp)


_TABLE1: Final = "SemAlign Table 1"
_STUDENT_7B_CHAT: Final = _row(_TABLE1, MMLU=44.20, GSM8K=16.07, HumanEval=14.05, MBPP=17.80)

# (teacher repo id, student repo id) -> row -> published scores.
PUBLISHED: Final[Mapping[tuple[str, str], Mapping[str, PublishedRow]]] = MappingProxyType(
    {
        (LLAMA2_13B_CHAT, LLAMA2_7B_CHAT): MappingProxyType(
            {
                "student": _STUDENT_7B_CHAT,
                "teacher": _row(_TABLE1, MMLU=52.90, GSM8K=20.55, HumanEval=18.75, MBPP=19.20),
                "seeking": _row(_TABLE1, MMLU=49.60, GSM8K=28.23, HumanEval=15.44, MBPP=20.60),
                "laten": _row(_TABLE1, MMLU=44.40, GSM8K=20.47, HumanEval=14.63, MBPP=18.20),
                "semalign": _row(_TABLE1, MMLU=50.30, GSM8K=19.21, HumanEval=17.34, MBPP=18.78),
            }
        ),
        (CODELLAMA_13B_PYTHON, LLAMA2_7B_CHAT): MappingProxyType(
            {
                "student": _STUDENT_7B_CHAT,
                "teacher": _code(47.56, 37.80),
                "seeking": _code(16.05, 21.40),
                "laten": _code(14.02, 17.80),
                "semalign": _code(20.12, 22.35),
            }
        ),
        (WIZARDCODER_13B_PYTHON, LLAMA2_7B_CHAT): MappingProxyType(
            {
                "student": _STUDENT_7B_CHAT,
                "teacher": _code(56.71, 41.60),
                "seeking": _code(15.04, 19.80),
                "laten": _code(14.02, 18.60),
                "semalign": _code(19.46, 21.18),
            }
        ),
    }
)


def protocol_label(protocol: str) -> str:
    """'tulu' -> 'Open-Instruct/Tulu 0-shot', 'chat_template' -> 'model chat template, 0-shot'."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"evaluation protocol {protocol!r} is not one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def repo_id(model: Mapping[str, Any] | None) -> str | None:
    """The hub repo id of a model's config (``hub: {repo_id: ..., revision: ...}``); None for a toy model."""
    hub = (model or {}).get("hub") or {}
    return hub.get("repo_id") or None


def canonical(repo: str) -> str:
    """A repo id as spelled in ``PUBLISHED``: the hub matches ids case-insensitively and redirects old names."""
    key = repo.strip().lower()
    known = {r.lower(): r for pair in PUBLISHED for r in pair}
    return ALIASES.get(key) or known.get(key, repo)


def published_rows(teacher: str | None, student: str | None) -> Mapping[str, PublishedRow]:
    """The published rows of a (teacher, student) pair of repo ids; empty if either is None or unpublished."""
    if teacher is None or student is None:
        return MappingProxyType({})
    return PUBLISHED.get((canonical(teacher), canonical(student)), MappingProxyType({}))


def published_cells(
    pairs: Mapping[str, Mapping[str, str]], models: Mapping[str, Mapping[str, Any]]
) -> list[PublishedCell]:
    """Every published cell that applies to this run: for each pair (``{"teacher": name, "student": name}``)
    whose two models (``models[name]``, config["models"]) are hub models with a published (teacher, student)
    combination, one cell per published row and benchmark. Toy pairs (no repo ids) contribute nothing."""
    cells = []
    for pair, spec in pairs.items():
        ids = [repo_id(models.get(spec[role])) for role in ("teacher", "student")]
        for row, published in published_rows(*ids).items():
            cells += [
                PublishedCell(pair, row, bench, value, published.source) for bench, value in published.scores.items()
            ]
    return cells
