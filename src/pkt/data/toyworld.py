"""The toy world: invented facts, word problems and tiny programs that a CPU can learn in minutes.

The world exists so that knowledge transfer is *measurable*: the teacher's pretraining corpus
holds every entity's facts, the student's only those of the first ``student_fraction`` of the
entities, and the test split of ``toy_mmlu`` asks about facts the student never saw (plus a few
control facts it did see). Arithmetic and code are shared skills: the teacher simply sees more of
them. Everything is drawn from one seeded ``random.Random``, so the same config gives the same bytes.

Every test record carries a ``cluster``: the items that share what they are generated from, whose scores
are correlated, so that the tables resample them together (``pkt.report.stats.paired_interval``):

* toy_mmlu: the entity (a person's facts share the person; about 150 entities in 420 items). Its four
  question templates, one per attribute, are too few to resample and are fixed by the config;
* toy_gsm8k: the sentence template, i.e. the two step verbs ("finds/loses", 16 in all); the person,
  the object and the numbers are fillers;
* toy_humaneval and toy_mbpp: the problem template, family and argument names ("add(x)", 59 in all;
  ``pkt.data.toycode``).

Only test records have it (training never reads it), and it is the only field the clustering adds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pkt.data.records import chat_text, make_record, write_manifest, write_split
from pkt.data.toycode import CodeProblem, sample_problem
from pkt.io import write_jsonl

ATTRIBUTES: dict[str, dict[str, object]] = {
    "city": {
        "values": ("Avalo", "Brindle", "Corvin", "Dunmere", "Eskar", "Fallow", "Grenna", "Hollin", "Istra",
                   "Jorvik"),
        "templates": ("{e} lives in {v}.", "The home city of {e} is {v}."),
        "question": "Where does {e} live?",
    },
    "profession": {
        "values": ("baker", "pilot", "farmer", "doctor", "painter", "sailor", "teacher", "miner", "singer",
                   "tailor"),
        "templates": ("{e} works as a {v}.", "The profession of {e} is {v}."),
        "question": "What is the profession of {e}?",
    },
    "colour": {
        "values": ("red", "blue", "green", "yellow", "purple", "orange", "white", "black", "pink", "grey"),
        "templates": ("{e} likes the colour {v}.", "The favourite colour of {e} is {v}."),
        "question": "What is the favourite colour of {e}?",
    },
    "pet": {
        "values": ("dog", "cat", "horse", "rabbit", "parrot", "turtle", "goat", "hamster", "owl", "frog"),
        "templates": ("{e} has a pet {v}.", "The pet of {e} is a {v}."),
        "question": "What pet does {e} have?",
    },
    "instrument": {
        "values": ("flute", "drum", "harp", "violin", "piano", "guitar", "trumpet", "cello", "banjo", "oboe"),
        "templates": ("{e} plays the {v}.", "The instrument of {e} is the {v}."),
        "question": "Which instrument does {e} play?",
    },
}
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
PEOPLE = ("Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lia", "Max", "Noa")
ITEMS = ("apple", "marble", "stamp", "coin", "shell", "card", "book", "pencil", "cookie", "sticker")
TASKS = ("toy_mmlu", "toy_gsm8k", "toy_humaneval", "toy_mbpp")
SPLITS = ("train", "extract", "align", "test")


@dataclass(frozen=True)
class Fact:
    entity: str
    attribute: str
    value: str
    known_by_student: bool


def entity_names(n: int, rng: random.Random) -> list[str]:
    """``n`` distinct pronounceable names of 2-3 consonant+vowel syllables, sometimes a final consonant."""
    names: list[str] = []
    while len(names) < n:
        syl = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(rng.randint(2, 3)))
        name = (syl + (rng.choice("lnrs") if rng.random() < 0.3 else "")).capitalize()
        if name not in names:
            names.append(name)
    return names


def make_facts(n_entities: int, attributes: list[str], student_fraction: float, rng: random.Random) -> list[Fact]:
    """Every (entity, attribute) fact; the first ``student_fraction`` of entities are the student's."""
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"world.attributes: unknown attribute(s) {unknown}; choose from {sorted(ATTRIBUTES)}")
    names = entity_names(n_entities, rng)
    n_student = round(student_fraction * n_entities)
    return [
        Fact(e, a, rng.choice(ATTRIBUTES[a]["values"]), i < n_student)  # type: ignore[arg-type]
        for i, e in enumerate(names)
        for a in attributes
    ]


def fact_sentences(fact: Fact) -> list[str]:
    """The two declarative paraphrases and the chat-formatted question/answer of one fact."""
    spec = ATTRIBUTES[fact.attribute]
    said = [t.format(e=fact.entity, v=fact.value) for t in spec["templates"]]  # type: ignore[attr-defined]
    return [*said, chat_text(fact_question(fact), fact.value)]


def fact_question(fact: Fact) -> str:
    return ATTRIBUTES[fact.attribute]["question"].format(e=fact.entity)  # type: ignore[attr-defined]


def mmlu_record(fact: Fact, rng: random.Random) -> dict:
    """A 4-option item scored by the log-likelihood of each option's text (cloze style)."""
    values = list(ATTRIBUTES[fact.attribute]["values"])  # type: ignore[call-overload]
    choices = [fact.value, *rng.sample([v for v in values if v != fact.value], 3)]
    rng.shuffle(choices)
    question = fact_question(fact)
    return make_record("toy_mmlu", question, fact.value, question=question, choices=choices,
                       answer=choices.index(fact.value), entity=fact.entity, attribute=fact.attribute,
                       known_by_student=fact.known_by_student)


def arithmetic_problem(rng: random.Random) -> tuple[str, str, int, str]:
    """A two-step word problem, its worked answer ending in ``#### n``, n, and its sentence template (the two
    step verbs, e.g. "finds/loses")."""
    who, item = rng.choice(PEOPLE), rng.choice(ITEMS)
    total = rng.randint(2, 9)
    text = [f"{who} has {total} {item}s."]
    work, verbs = [], []
    for step in range(2):
        if rng.random() < 0.5 or total == 0:
            k = rng.randint(1, 9)
            verbs.append("finds" if rng.random() < 0.5 else "buys")
            text.append(f"{'Then ' if step else ''}{who} {verbs[-1]} {k} more.")
            work.append(f"{total} + {k} = {total + k}.")
            total += k
        else:
            k = rng.randint(1, total)
            verbs.append("gives away" if rng.random() < 0.5 else "loses")
            text.append(f"{'Then ' if step else ''}{who} {verbs[-1]} {k}.")
            work.append(f"{total} - {k} = {total - k}.")
            total -= k
    text.append(f"How many {item}s does {who} have now?")
    return " ".join(text), " ".join(work) + f"\n#### {total}", total, "/".join(verbs)


def gsm8k_record(rng: random.Random, cluster: bool = False) -> dict:
    """A word problem as a record; with ``cluster`` (test records) also its sentence template as ``cluster``."""
    question, answer, value, template = arithmetic_problem(rng)
    extra = {"cluster": template} if cluster else {}
    return make_record("toy_gsm8k", question, answer, question=question, answer=answer, answer_value=value, **extra)


def humaneval_record(p: CodeProblem) -> dict:
    return make_record("toy_humaneval", p.humaneval_prompt, p.humaneval_completion, prompt=p.humaneval_prompt,
                       canonical_solution=p.humaneval_completion, test=p.humaneval_test, entry_point=p.name)


def mbpp_record(p: CodeProblem) -> dict:
    tests = p.mbpp_tests
    user = p.mbpp_text + "\nYour code should pass these tests:\n" + "\n".join(tests)
    return make_record("toy_mbpp", user, p.mbpp_code, text=p.mbpp_text, code=p.mbpp_code, test_list=tests,
                       entry_point=p.name)


def unique_records(make: Callable[[], dict], n: int, seen: set[str], max_tries: int = 100) -> list[dict]:
    """``n`` records whose user message is new to ``seen`` (updated in place): disjoint pools."""
    out: list[dict] = []
    tries = 0
    while len(out) < n:
        rec = make()
        key = rec["messages"][0]["content"]
        tries = 0 if key not in seen else tries + 1
        if tries > max_tries * max(n, 1):
            raise ValueError(f"could not draw {n} distinct items for {rec['task']}: the world is too small")
        if key not in seen:
            seen.add(key)
            out.append(rec)
    return out


def iter_split_sizes(sizes: dict[str, int]) -> Iterator[tuple[str, int]]:
    for split in SPLITS:
        yield split, int(sizes[split])


@dataclass(frozen=True)
class World:
    """Everything ``prepare_data`` writes: task splits and the two pretraining corpora."""

    splits: dict[str, dict[str, list[dict]]]  # task -> split -> records
    corpora: dict[str, list[str]]  # "teacher" | "student" -> documents
    facts: list[Fact]


def generate(cfg: dict) -> World:
    """Build the whole world from the ``world`` config section (see the config schema)."""
    rng = random.Random(cfg["seed"])
    facts = make_facts(cfg["n_entities"], list(cfg["attributes"]), cfg["student_fraction"], rng)
    splits = {"toy_mmlu": _mmlu_splits(facts, cfg, rng)}

    seen: set[str] = set()
    splits["toy_gsm8k"] = {s: unique_records(partial(gsm8k_record, rng, s == "test"), n, seen)
                           for s, n in iter_split_sizes(cfg["splits"]["toy_gsm8k"])}
    code_seen: set[str] = set()  # one pool for both code tasks: no function name is in two splits
    for task, to_record in (("toy_humaneval", humaneval_record), ("toy_mbpp", mbpp_record)):
        splits[task] = {s: [to_record(p) | ({"cluster": p.template} if s == "test" else {})
                            for p in _unique_problems(rng, n, code_seen)]
                        for s, n in iter_split_sizes(cfg["splits"][task])}

    corpus = cfg["corpus"]
    n_arith = max(corpus["teacher"]["arithmetic"], corpus["student"]["arithmetic"])
    n_code = max(corpus["teacher"]["code"], corpus["student"]["code"])
    arith = [chat_text(r["question"], r["answer"])
             for r in unique_records(lambda: gsm8k_record(rng), n_arith, seen)]
    problems = _unique_problems(rng, n_code, set(), exclude=frozenset(code_seen))
    code = [chat_text(p.humaneval_prompt, p.humaneval_completion) if i % 2 == 0
            else chat_text(mbpp_record(p)["messages"][0]["content"], p.mbpp_code)
            for i, p in enumerate(problems)]
    corpora = {}
    for who in ("teacher", "student"):
        known = [f for f in facts if who == "teacher" or f.known_by_student]
        docs = [s for f in known for s in fact_sentences(f)]
        docs += arith[: corpus[who]["arithmetic"]] + code[: corpus[who]["code"]]
        rng.shuffle(docs)
        corpora[who] = docs
    return World(splits=splits, corpora=corpora, facts=facts)


def _unique_problems(rng: random.Random, n: int, seen: set[str], exclude: frozenset[str] = frozenset()
                     ) -> list[CodeProblem]:
    """``n`` problems new to ``seen`` (updated in place) and whose function name is not in ``exclude``.

    Split items are keyed by function name, so no function is in two splits. The pretraining pool is
    keyed by signature (name and arguments) and excludes every split's names: a corpus may show
    ``add_3(x)`` and ``add_3(n)``, but never a function that a split asks for.
    """
    out: list[CodeProblem] = []
    tries = 0
    while len(out) < n:
        p = sample_problem(rng)
        key = p.signature if exclude else p.name
        if key in seen or p.name in exclude:
            tries += 1
            if tries > 100 * max(n, 1):
                raise ValueError(f"could not draw {n} distinct code problems: lower world.splits or world.corpus code")
            continue
        seen.add(key)
        out.append(p)
    return out


def _mmlu_splits(facts: list[Fact], cfg: dict, rng: random.Random) -> dict[str, list[dict]]:
    """Test = held-out facts (student never saw them) + a control share it did; the rest feed training."""
    sizes = dict(iter_split_sizes(cfg["splits"]["toy_mmlu"]))
    held = [f for f in facts if not f.known_by_student]
    ctrl = [f for f in facts if f.known_by_student]
    rng.shuffle(held)
    rng.shuffle(ctrl)
    n_ctrl = round(sizes["test"] * cfg["control_fraction"])
    n_held = sizes["test"] - n_ctrl
    rest = held[n_held:] + ctrl[n_ctrl:]
    need = n_held + n_ctrl + sum(n for s, n in sizes.items() if s != "test")
    if n_held > len(held) or n_ctrl > len(ctrl) or need > len(facts):
        raise ValueError(
            f"world.splits.toy_mmlu asks for {need} items ({n_held} held-out and {n_ctrl} control in test) but the "
            f"world has {len(facts)} facts ({len(held)} held out): raise world.n_entities or lower the split sizes"
        )
    rng.shuffle(rest)
    out = {"test": [mmlu_record(f, rng) | {"cluster": f.entity} for f in held[:n_held] + ctrl[:n_ctrl]]}
    start = 0
    for split in ("train", "extract", "align"):
        out[split] = [mmlu_record(f, rng) for f in rest[start : start + sizes[split]]]
        start += sizes[split]
    return out


def write_data(world_cfg: dict, out_dir: Path, splits: list[str], corpora: list[str]) -> None:
    """Rule ``prepare_data`` (``data.source: toy``): the world's task splits, corpora and manifest."""
    world = generate(world_cfg)
    for path in map(Path, splits):
        task, split = path.parent.name, path.stem
        write_split(path, world.splits[task][split], prefix=f"{task}-{split}")
    for path in map(Path, corpora):
        write_jsonl(path, ({"text": doc} for doc in world.corpora[path.stem]))
    n_held = sum(not f.known_by_student for f in world.facts)
    write_manifest(out_dir, [*splits, *corpora], {"world": world_cfg, "facts": len(world.facts),
                                                  "facts_held_out_from_student": n_held})
