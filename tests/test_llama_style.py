"""Inputs shaped like the real ones: a Llama-style tokenizer (adds a BOS, has no pad token) and long examples.

The toy tokenizer has a pad token and adds no BOS, and the longest toy example is short, which hid the
defects these tests pin down: training and importance crashing without a pad token, training and
evaluation seeing different tokens, and a long response erasing its prompt.
"""

from __future__ import annotations

import json

import pytest
import torch
from tiny_llama import BOS, llama_like

from pkt.data.records import (
    encode_split,
    encode_supervised,
    ensure_pad_token,
    render_prompt,
    supervised_batches,
    write_split,
)
from pkt.data.tokenizer import train_tokenizer
from pkt.data.toyworld import generate
from pkt.models.build import llama_config


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A tiny student with a Llama-style tokenizer, saved like a prepared model, and a train split."""
    from conftest import small_world
    from transformers import AutoTokenizer, LlamaForCausalLM

    root = tmp_path_factory.mktemp("llama")
    world = generate(small_world())
    tok = llama_like(train_tokenizer(world.corpora["teacher"], vocab_size=400))
    arch = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 2, "max_position_embeddings": 256}
    torch.manual_seed(0)
    LlamaForCausalLM(llama_config(arch, tok)).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    write_split(root / "train.jsonl", world.splits["toy_gsm8k"]["train"], prefix="t")
    reloaded = AutoTokenizer.from_pretrained(root / "model")
    assert reloaded.pad_token is None and reloaded("x")["input_ids"][0] == reloaded.bos_token_id
    return root, world


def record(user: str, assistant: str) -> dict:
    return {"id": "r", "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def test_a_long_response_keeps_its_whole_prompt(llama):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama[0] / "model")
    rec = record("How many apples? Think step by step.", " ".join(f"step {i} adds {i}." for i in range(120)))
    prompt = tok(render_prompt(rec["messages"][0]["content"]))["input_ids"]
    assert len(tok(rec["messages"][1]["content"], add_special_tokens=False)["input_ids"]) > 300
    enc = encode_supervised(rec, tok, max_length=256)
    assert len(enc["input_ids"]) == 256
    assert enc["input_ids"][: len(prompt)] == prompt  # BOS, chat header and question all kept
    assert enc["labels"][: len(prompt)] == [-100] * len(prompt)
    assert all(label != -100 for label in enc["labels"][len(prompt) :])  # the response is what is cut
    assert encode_supervised(record("word " * 300, "42"), tok, max_length=256) is None  # no room: dropped
    kept, stats = encode_split([rec, record("word " * 300, "42"), record("2 + 2?", "4")], tok, max_length=256)
    assert len(kept) == 2 and stats == {"examples": 3, "kept": 2, "truncated": 1, "dropped": 1, "max_length": 256}


def test_training_and_evaluation_see_the_same_tokens(llama):
    """lm-eval encodes a context with the tokenizer's special tokens: the training prompt must match."""
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama[0] / "model")
    lm = HFLM(pretrained=AutoModelForCausalLM.from_pretrained(llama[0] / "model"), tokenizer=tok, batch_size=1)
    for rec in llama[1].splits["toy_gsm8k"]["test"][:5]:
        prompt = render_prompt(rec["messages"][0]["content"])
        context = lm.tok_batch_encode([prompt])[0][0].tolist()
        enc = encode_supervised(rec, tok, max_length=256)
        assert context[0] == tok.bos_token_id
        assert enc["input_ids"][: len(context)] == context
        assert enc["labels"][len(context)] != -100  # the first response token follows the context


def test_a_tokenizer_without_pad_token_trains_and_scores_importance(llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pkt.layers.importance import layer_importance
    from pkt.train import train

    root, world = llama
    figures = train("lora", {"r": 4, "alpha": 8}, root / "model", root / "train.jsonl", tmp_path / "out",
                    tmp_path / "ck", {"max_steps": 3, "batch_size": 4, "save_steps": 2, "logging_steps": 1})
    assert figures["steps"] == 3 and (tmp_path / "out" / "adapter_model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(root / "model")
    batches, stats = supervised_batches(world.splits["toy_gsm8k"]["extract"], tok, batch_size=3, max_length=256)
    assert tok.pad_token is not None and stats["kept"] == len(world.splits["toy_gsm8k"]["extract"])
    pad_positions = batches[0]["attention_mask"] == 0
    assert (batches[0]["labels"][pad_positions] == -100).all()  # padding is masked out of every loss
    scores = layer_importance(AutoModelForCausalLM.from_pretrained(root / "model"), batches, disable_progress=True)
    assert len(scores) == 2 and all(s > 0 for s in scores)


def test_ensure_pad_token_follows_the_ecosystem(llama):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama[0] / "model")
    assert ensure_pad_token(tok).pad_token == tok.unk_token  # the toy tokenizer's unk is its EOS text
    kept = AutoTokenizer.from_pretrained(llama[0] / "model")
    kept.pad_token = BOS
    assert ensure_pad_token(kept).pad_token == BOS  # an existing pad token is left alone
    json.dumps(kept.special_tokens_map)
