"""The toy world: determinism, disjoint splits, the knowledge split, and correct references."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pkt.data.records import load_split
from pkt.data.toyworld import SPLITS, TASKS, fact_question, generate, write_data
from pkt.io import sha256_file


def write_world(cfg: dict, out: Path) -> list[Path]:
    """What rule prepare_data writes for the toy source (pkt.data.toyworld.write_data)."""
    splits = [out / t / f"{s}.jsonl" for t in TASKS for s in SPLITS]
    corpora = [out / "corpus" / f"{c}.jsonl" for c in ("teacher", "student")]
    write_data(cfg, out, [str(p) for p in splits], [str(p) for p in corpora])
    return [*splits, *corpora, out / "manifest.json"]


def test_same_seed_same_bytes_other_seed_other_bytes(world_cfg, tmp_path):
    a = write_world(world_cfg, tmp_path / "a")
    b = write_world(world_cfg, tmp_path / "b")
    assert [sha256_file(p) for p in a] == [sha256_file(p) for p in b]
    c = write_world({**world_cfg, "seed": world_cfg["seed"] + 1}, tmp_path / "c")
    assert sha256_file(a[0]) != sha256_file(c[0])


def test_manifest_lists_every_file_with_its_count(world_cfg, tmp_path):
    import json

    files = write_world(world_cfg, tmp_path)
    manifest = json.loads(files[-1].read_text())
    assert len(manifest["files"]) == len(files) - 1
    test_mmlu = manifest["files"]["toy_mmlu/test.jsonl"]
    assert test_mmlu["records"] == world_cfg["splits"]["toy_mmlu"]["test"]
    assert test_mmlu["sha256"] == sha256_file(tmp_path / "toy_mmlu" / "test.jsonl")
    assert len(load_split(tmp_path / "toy_mmlu" / "test.jsonl")) == test_mmlu["records"]


def test_split_sizes_follow_config(world_cfg):
    world = generate(world_cfg)
    for task in TASKS:
        for split in SPLITS:
            assert len(world.splits[task][split]) == world_cfg["splits"][task][split], (task, split)


def test_splits_are_disjoint_within_and_across_code_tasks(world_cfg):
    world = generate(world_cfg)
    for task in TASKS:
        prompts = [r["messages"][0]["content"] for s in SPLITS for r in world.splits[task][s]]
        assert len(prompts) == len(set(prompts)), task
    names = [r["entry_point"] for t in ("toy_humaneval", "toy_mbpp") for s in SPLITS for r in world.splits[t][s]]
    assert len(names) == len(set(names))


def test_student_corpus_lacks_held_out_facts_and_teacher_has_all(world_cfg):
    world = generate(world_cfg)
    teacher, student = "\n".join(world.corpora["teacher"]), "\n".join(world.corpora["student"])
    test = world.splits["toy_mmlu"]["test"]
    held = [r for r in test if not r["known_by_student"]]
    ctrl = [r for r in test if r["known_by_student"]]
    assert held and ctrl
    assert round(len(test) * world_cfg["control_fraction"]) == len(ctrl)
    for r in test:
        qa = f"{r['question']}\n<|assistant|>\n{r['choices'][r['answer']]}"
        assert qa in teacher
        assert (qa in student) == r["known_by_student"]
        assert r["entity"] not in student or r["known_by_student"]
    train_qs = {r["question"] for s in ("train", "extract", "align") for r in world.splits["toy_mmlu"][s]}
    assert not train_qs & {r["question"] for r in test}


def test_mmlu_items_have_four_distinct_options_with_the_true_value(world_cfg):
    world = generate(world_cfg)
    facts = {(f.entity, f.attribute): f for f in world.facts}
    for r in world.splits["toy_mmlu"]["test"]:
        assert len(set(r["choices"])) == 4
        fact = facts[(r["entity"], r["attribute"])]
        assert r["choices"][r["answer"]] == fact.value
        assert r["question"] == fact_question(fact)


def recompute(question: str) -> int:
    """An independent reading of a word problem: '+' for buys/finds, '-' for gives away/loses."""
    total = int(re.search(r"has (\d+)", question).group(1))
    for verb, k in re.findall(r"(buys|finds|gives away|loses) (\d+)", question):
        total += int(k) if verb in ("buys", "finds") else -int(k)
    return total


def test_every_arithmetic_answer_equals_its_computed_value(world_cfg):
    world = generate(world_cfg)
    records = [r for s in SPLITS for r in world.splits["toy_gsm8k"][s]]
    for r in records:
        assert recompute(r["question"]) == r["answer_value"] == int(r["answer"].split("####")[-1])
        for a, op, b, c in re.findall(r"(\d+) ([+-]) (\d+) = (\d+)", r["answer"]):
            assert (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(c)


def run_checked(program: str) -> None:
    exec(compile(program, "<reference>", "exec"), {})  # noqa: S102 - our own generated references


def test_every_code_reference_passes_its_own_tests(world_cfg):
    world = generate(world_cfg)
    for s in SPLITS:
        for r in world.splits["toy_humaneval"][s]:
            run_checked(r["prompt"] + r["canonical_solution"] + "\n" + r["test"] + f"\ncheck({r['entry_point']})\n")
        for r in world.splits["toy_mbpp"][s]:
            run_checked(r["code"] + "\n" + "\n".join(r["test_list"]) + "\n")


def test_a_wrong_solution_fails_the_generated_tests(world_cfg):
    r = generate(world_cfg).splits["toy_humaneval"]["test"][0]
    with pytest.raises(AssertionError):
        run_checked(r["prompt"] + "    return None\n" + r["test"] + f"\ncheck({r['entry_point']})\n")


def test_too_small_world_names_the_key(world_cfg):
    cfg = {**world_cfg, "n_entities": 4}
    with pytest.raises(ValueError, match="world.splits.toy_mmlu"):
        generate(cfg)


def test_no_split_function_appears_in_a_pretraining_corpus(world_cfg):
    world = generate(world_cfg)
    corpus = "\n".join(world.corpora["teacher"])
    assert "def " in corpus
    for s in SPLITS:
        for t in ("toy_humaneval", "toy_mbpp"):
            for r in world.splits[t][s]:
                assert f"def {r['entry_point']}(" not in corpus


def test_test_records_carry_the_cluster_they_are_generated_from(world_cfg):
    """MMLU: the entity; GSM8K: the two step verbs; code: family(arguments), whose docstring it is. Only test
    records carry one, and removing it leaves the record as it was generated before clusters existed."""
    from pkt.data.toycode import ARG_NAMES, FAMILIES

    world = generate({**world_cfg, "splits": {**world_cfg["splits"], "toy_humaneval": {
        "train": 8, "extract": 4, "align": 4, "test": 120}}})
    assert sum(len(ARG_NAMES[f.kind]) for f in FAMILIES) == 59  # the templates of the code tasks
    for task in TASKS:
        assert all("cluster" in r for r in world.splits[task]["test"]), task
        assert not any("cluster" in r for s in SPLITS if s != "test" for r in world.splits[task][s]), task
    for r in world.splits["toy_mmlu"]["test"]:
        assert r["cluster"] == r["entity"]
    for r in world.splits["toy_gsm8k"]["test"]:
        verbs = re.findall(r"(buys|finds|gives away|loses) \d+", r["question"])
        assert r["cluster"] == "/".join(verbs) and len(verbs) == 2
    family_doc = {f.key: f.doc for f in FAMILIES}
    for task in ("toy_humaneval", "toy_mbpp"):
        for r in world.splits[task]["test"]:
            family, args = re.fullmatch(r"(\w+)\((.*)\)", r["cluster"]).groups()
            assert f"({args})" in r["messages"][0]["content"]  # the function's own arguments
            names = args.split(", ")
            doc = family_doc[family].format(a=f"`{names[0]}`", b=f"`{names[-1]}`", k="K")
            said = r["prompt"].split('"""')[1] if task == "toy_humaneval" else r["text"]
            assert re.sub(r"\d+", "K", said).lower().endswith(doc.removeprefix("Return ").lower())
    humaneval = world.splits["toy_humaneval"]["test"]
    assert len({r["cluster"] for r in humaneval}) < len(humaneval)  # 120 problems share fewer templates
    docs = {r["cluster"]: re.sub(r"\d+", "K", r["prompt"].split('"""')[1]) for r in humaneval}
    assert all(re.sub(r"\d+", "K", r["prompt"].split('"""')[1]) == docs[r["cluster"]] for r in humaneval)
