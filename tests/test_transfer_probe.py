"""pkt.transfer_probe: the probe split, the rows' settings and the table, with known answers."""

from __future__ import annotations

import json

from pkt.data.toyworld import ATTRIBUTES
from pkt.transfer_probe import PROBE_QUESTIONS, PROBE_ROWS, probe_records, probe_settings, probe_table


def fact(entity: str, attribute: str, known: bool, k: int) -> dict:
    question = ATTRIBUTES[attribute]["question"].format(e=entity)
    return {"id": f"toy_mmlu-test-{k:05d}", "entity": entity, "attribute": attribute, "known_by_student": known,
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "x"}]}


def test_the_probe_asks_only_held_out_facts_in_new_phrasings_without_answers():
    test = [fact("Nifon", "city", False, 0), fact("Bako", "pet", True, 1), fact("Tuli", "colour", False, 2)]
    split = probe_records(test)
    assert [(r["entity"], r["phrasing"]) for r in split] == [("Nifon", 0), ("Nifon", 1), ("Tuli", 0), ("Tuli", 1)]
    assert all(r["messages"][1]["content"] == "" for r in split)  # no gold answer anywhere
    assert split[0]["messages"][0]["content"] == "In which city does Nifon live?"
    for attribute, phrasings in PROBE_QUESTIONS.items():  # never the test's own question, never twice the same
        assert ATTRIBUTES[attribute]["question"] not in phrasings and len(set(phrasings)) == 2
        for template in ATTRIBUTES[attribute]["templates"]:
            assert template.split("{e}")[0] not in {p.split("{e}")[0] for p in phrasings if p.split("{e}")[0]}


def test_each_row_keeps_only_its_teacher_signal():
    configured = {"lora": {"r": 8}, "kd": {"r": 8, "kd_alpha": 0.5, "temperature": 2.0},
                  "semalign": {"r": 8, "map": "logit", "output_weight": 1.0, "ce_weight": 0.0, "align_steps": 4},
                  "fitnet": {"r": 8, "ce_weight": 1.0, "layer_weight": 1.0}}
    rows = probe_settings(configured)
    assert set(rows) == set(PROBE_ROWS) == {"lora", "kd", "semalign_logit", "semalign_cosine", "fitnet"}
    assert rows["kd"] == ("kd", {"r": 8, "kd_alpha": 1.0, "temperature": 2.0})  # no cross-entropy
    assert rows["semalign_cosine"][1] == {"r": 8, "map": "cosine", "output_weight": 0.0, "ce_weight": 0.0,
                                          "align_steps": 0}  # the layer term alone
    assert rows["fitnet"][1]["ce_weight"] == 0.0 and rows["lora"] == ("lora", {"r": 8})


def result(tmp_path, row: str, seed: int, scores: list[float]) -> str:
    groups = ["held_out"] * 6 + ["control"] * 2
    path = tmp_path / f"{row}-{seed}.json"
    method = "vanilla" if row == "student" else row
    subsets = {g: {"value": sum(s for s, h in zip(scores, groups) if h == g) / groups.count(g), "n": groups.count(g)}
               for g in set(groups)}
    path.write_text(json.dumps({
        "task": "toy_mmlu", "method": method, "pair": "student" if row == "student" else "toy", "seed": seed,
        "value": sum(scores) / 8, "n": 8, "subsets": subsets, "items": {
            "id": [f"i{k}" for k in range(8)], "score": scores, "group": groups,
            "cluster": ["a", "a", "b", "b", "c", "c", "d", "e"]}}))
    return str(path)


def test_the_table_compares_every_row_with_lora_on_held_out_facts(tmp_path):
    """KD answers 2 more held-out items than LoRA on both seeds: +33.33 points on the held-out column."""
    lora = [0, 0, 0, 0, 1, 1, 1, 1]
    kd = [1, 1, 0, 0, 1, 1, 1, 1]
    results = [result(tmp_path, row, seed, s) for seed in (0, 1) for row, s in (("lora", lora), ("kd", kd))]
    pairs = {"toy": {"teacher": "t", "student": "student"}}
    table = probe_table([result(tmp_path, "student", 0, lora)], results, pairs, n_boot=500, level=0.95, seed=0)
    rows = dict(zip(table["Model"], table.to_dict("records")))
    assert rows["KD"]["MMLU held-out vs LoRA"].startswith("+33.33")
    assert rows["KD"]["Teacher signal"].startswith("teacher") and rows["KD"]["MMLU control vs LoRA"].startswith("+0.00")
    assert rows["LoRA"]["MMLU held-out vs LoRA"] == "" and "negative control" in rows["LoRA"]["Teacher signal"]
    assert rows["Student (student)"]["MMLU held-out vs LoRA"].startswith("+0.00 [+0.00, +0.00]")  # named by model
    assert "only its teacher signal" in table.attrs["note"]
