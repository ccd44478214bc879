"""The papers' records train in the reference trainers' format, token for token; toy records as before.

fixtures/reference_training.json holds what the reference trainers' own code (ParaKnowTransfer's finetune.py
for Seeking, Neural_Incompatibility's utils/utils.py and knowledge_neurons.py for LaTen) makes of the first
record of each LaTen split with the Llama-style tokenizer of sp_llama.py; fixtures/make_reference_training.py
wrote it. The project's encoder must reproduce every string, id and label.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sp_llama import SPLITS, fingerprint, sp_llama

from pkt.data.paper import convert
from pkt.data.records import (
    REFERENCE_FORMAT,
    encode_split,
    encode_supervised,
    make_record,
    reference_chat,
    turns,
)

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "reference_training.json").read_text(encoding="utf-8"))
REFS = FIXTURE["references"]
SEEKING_LEN, LATEN_LEN = REFS["paraknowtransfer"]["settings"]["cutoff_len"], REFS["laten"]["settings"]["cutoff_len"]
# Encoded before the reference format existed: toy_gsm8k train record 10 of the smoke world, toy tokenizer.
TOY_IDS = [2, 202, 48, 68, 91, 314, 339, 319, 87, 68, 80, 83, 86, 17, 224, 48, 68, 91, 224, 282, 86, 265, 339, 17, 353,
           224, 48, 68, 91, 342, 88, 92, 86, 224, 27, 341, 17, 351, 346, 319, 87, 68, 80, 83, 86, 302, 224, 48, 68, 91,
           316, 352, 34, 202, 3, 202, 23, 354, 339, 295, 398, 17, 398, 323, 224, 27, 295, 224, 27, 17, 202, 350, 224,
           27, 0]
TOY_PROMPT = 56  # tokens masked


@pytest.fixture(scope="module")
def tok():
    """The Llama-style test tokenizer, as a stage loads it: BOS on, no pad token."""
    if not SPLITS.is_dir():
        pytest.skip("../shared/data is absent")
    tok = sp_llama()
    if fingerprint(tok) != FIXTURE["tokenizer"]["fingerprint"]:
        pytest.fail("tests/sp_llama.py builds another tokenizer than the fixture's: rerun "
                    "tests/fixtures/make_reference_training.py (its docstring)")
    return tok


def paper_record(entry: dict) -> dict:
    """The fixture's row as the paper data stage writes it."""
    return convert((json.dumps(entry["row"], ensure_ascii=False) + "\n").encode(), "paper", entry["split"])[0]


def same(enc: dict | None, ref: dict) -> None:
    assert enc is not None
    assert enc["input_ids"] == ref["input_ids"]
    assert enc["labels"] == ref["labels"]
    assert enc["attention_mask"] == [1] * len(ref["input_ids"])


def test_the_test_tokenizer_marks_words_as_llama_does(tok):
    after_header = tok.convert_ids_to_tokens(tok("<|assistant|>\nThe")["input_ids"])
    assert after_header[0] == "<s>" and after_header[-2:] == ["<0x0A>", "The"]  # no "▁" after a newline
    assert tok.convert_ids_to_tokens(tok("The")["input_ids"]) == ["<s>", "▁The"]  # "▁" at the text's start
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token) == (0, 1, 2, None)


def test_the_fixture_covers_every_split_and_both_trainers():
    assert len(FIXTURE["records"]) == 12 and len({e["split"] for e in FIXTURE["records"]}) == 12
    assert REFS["paraknowtransfer"]["commit"] == "1a104a2ed9718528bf6b4b4020f981c6c1f8bef7"
    assert REFS["laten"]["commit"] == "bba32ea1b6f0b78d3b0ccbcd9c8dd0f08a23e318"
    assert {e["split"] for e in FIXTURE["records"] if "laten_train_on_inputs" in e} == {
        f"mmlu/mmlu_{s}_split.jsonl" for s in ("train", "extract", "align")}


@pytest.mark.parametrize("entry", FIXTURE["records"], ids=[e["split"] for e in FIXTURE["records"]])
def test_paper_records_encode_as_the_reference_trainers(tok, entry):
    from pkt.methods.laten.locate import attribution_input

    record = paper_record(entry)
    assert record["format"] == REFERENCE_FORMAT
    assert reference_chat(*turns(record)) == entry["paraknowtransfer"]["text"] == entry["laten"]["text"]
    same(encode_supervised(record, tok, SEEKING_LEN, trainer="paraknowtransfer"), entry["paraknowtransfer"])
    same(encode_supervised(record, tok, LATEN_LEN, trainer="laten"), entry["laten"])
    assert entry["paraknowtransfer"]["input_ids"][0] == tok.bos_token_id != entry["laten"]["input_ids"][0]
    for trainer in ("paraknowtransfer", "laten"):
        short = entry[f"{trainer}_truncated"]
        enc = encode_supervised(record, tok, short["cutoff_len"], trainer=trainer)
        if set(short["labels"]) == {-100}:  # the cut reached the prompt: the reference keeps a loss-free example
            assert enc is None
        else:
            same(enc, short)
    if "laten_train_on_inputs" in entry:
        assert entry["laten_train_on_inputs"]["reference_error"].startswith("UnboundLocalError")
        same(encode_supervised(record, tok, LATEN_LEN, trainer="laten", train_on_inputs=True),
             entry["laten_train_on_inputs"])
    ids, target = attribution_input(record, tok, max_length=4096)
    assert ids[0].tolist() == entry["laten_attribution"]["input_ids"]
    assert target == entry["laten_attribution"]["target"]


def test_the_first_answer_token_is_the_one_a_whole_tokenisation_gives(tok):
    """MMLU answers start "The answer is": after the header's newline, "The", not the "▁The" of a text start."""
    entry = next(e for e in FIXTURE["records"] if e["split"].startswith("mmlu/"))
    record = paper_record(entry)
    seeking = encode_supervised(record, tok, SEEKING_LEN)
    first = seeking["labels"][seeking["labels"].count(-100)]
    assert tok.convert_ids_to_tokens(first) == "The"
    laten = encode_supervised(record, tok, LATEN_LEN, trainer="laten")
    n = laten["labels"].count(-100)
    assert laten["input_ids"][n - 1] == first  # LaTen masks the first answer token too
    toy = encode_supervised({k: v for k, v in record.items() if k != "format"}, tok, SEEKING_LEN)
    assert tok.convert_ids_to_tokens(toy["labels"][toy["labels"].count(-100)]) == "▁The"


@pytest.fixture(scope="module")
def toy():
    """The smoke world's toy_gsm8k train split and its toy tokenizer."""
    from conftest import small_world

    from pkt.data.tokenizer import train_tokenizer
    from pkt.data.toyworld import generate

    world = generate(small_world())
    return world.splits["toy_gsm8k"]["train"], train_tokenizer(world.corpora["teacher"], vocab_size=400)


def test_toy_records_encode_exactly_as_before(toy):
    from tiny_llama import llama_like

    records, tok = toy
    assert "format" not in records[10]
    for trainer in ("paraknowtransfer", "laten"):
        enc = encode_supervised(records[10], tok, 256, trainer=trainer)
        assert enc["input_ids"] == TOY_IDS and enc["labels"] == [-100] * TOY_PROMPT + TOY_IDS[TOY_PROMPT:]
        assert encode_supervised(records[10], tok, 64, trainer=trainer)["input_ids"] == TOY_IDS[:64]
    llama = llama_like(tok)
    enc = encode_supervised(records[10], llama, 256)
    assert enc["input_ids"] == [llama.bos_token_id, *TOY_IDS] and enc["labels"].count(-100) == TOY_PROMPT + 1


def test_train_on_inputs_labels_every_token(toy, tok):
    records, toy_tok = toy
    record = paper_record(FIXTURE["records"][0])
    for rec, t in ((records[10], toy_tok), (record, tok)):
        for trainer in ("paraknowtransfer", "laten"):
            enc = encode_supervised(rec, t, 1024, trainer=trainer, train_on_inputs=True)
            assert enc["labels"] == enc["input_ids"]
            assert enc["input_ids"] == encode_supervised(rec, t, 1024, trainer=trainer)["input_ids"]


def test_a_long_response_is_cut_and_its_prompt_kept_whole(tok):
    long = make_record("paper", "How many apples? Think step by step.",
                       " ".join(f"step {i} adds {i}." for i in range(120)), format=REFERENCE_FORMAT)
    for trainer in ("paraknowtransfer", "laten"):
        whole = encode_supervised(long, tok, 4096, trainer=trainer)
        n = whole["labels"].count(-100)
        assert len(whole["input_ids"]) > 300 and whole["input_ids"][-1] == tok.eos_token_id
        enc = encode_supervised(long, tok, 256, trainer=trainer)
        assert enc["input_ids"] == whole["input_ids"][:256] and tok.eos_token_id not in enc["input_ids"]
        assert enc["labels"] == [-100] * n + enc["input_ids"][n:]  # the whole prompt masked, the response cut
        assert encode_supervised(long, tok, n, trainer=trainer) is None  # no room for a response token: dropped
        assert encode_supervised(long, tok, n + 1, trainer=trainer)["labels"][-1] != -100
    no_room = make_record("paper", "word " * 300, "42", format=REFERENCE_FORMAT)
    short = make_record("paper", "2 + 2?", "4", format=REFERENCE_FORMAT)
    kept, stats = encode_split([long, no_room, short], tok, 256, trainer="laten")
    assert len(kept) == 2 and stats == {"examples": 3, "kept": 2, "truncated": 1, "dropped": 1, "max_length": 256}


def test_an_unknown_trainer_or_format_is_an_error(tok):
    record = paper_record(FIXTURE["records"][0])
    with pytest.raises(ValueError, match="trainer 'seeking'"):
        encode_supervised(record, tok, 256, trainer="seeking")
    with pytest.raises(ValueError, match="unknown format 'alpaca'"):
        encode_supervised({**record, "format": "alpaca"}, tok, 256)
