"""Corpus packing, model building and the knowledge probe on tiny models."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM

from pkt.data.records import render_prompt
from pkt.data.tokenizer import train_tokenizer
from pkt.models.build import llama_config, pack_corpus
from pkt.probe import option_logliks, probe

DOCS = [f"Doc {i} says the value is {i * 7}." for i in range(40)]
ARCH = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 2, "max_position_embeddings": 128}


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(DOCS + ["What pet does Vorla have?", "owl cat dog frog"], vocab_size=320)


def test_pack_corpus_repacks_every_epoch_deterministically(tok):
    blocks, total = pack_corpus(DOCS, tok, seq_len=16, seed=0, n_blocks=100)
    assert total == sum(len(tok(d, add_special_tokens=False)["input_ids"]) + 1 for d in DOCS)
    assert len(blocks) == 100 and all(len(b) == 16 for b in blocks)
    per_epoch = total // 16
    assert blocks[:per_epoch] != blocks[per_epoch : 2 * per_epoch]  # reshuffled, not repeated
    assert pack_corpus(DOCS, tok, 16, 0, 100)[0] == blocks
    assert sum(b.count(tok.eos_token_id) for b in blocks[:per_epoch]) >= len(DOCS) - 2
    with pytest.raises(ValueError, match="shorter than one block"):
        pack_corpus(DOCS[:1], tok, seq_len=4096, seed=0, n_blocks=1)


def test_llama_config_is_untied_and_sized_to_the_tokenizer(tok):
    cfg = llama_config(ARCH, tok)
    assert cfg.vocab_size == len(tok) and not cfg.tie_word_embeddings
    assert cfg.pad_token_id == tok.pad_token_id != cfg.eos_token_id


def test_option_logliks_batched_equal_one_by_one(tok):
    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config(ARCH, tok)).eval()
    prompts = [render_prompt("What pet does Vorla have?"), render_prompt("Doc 3 says?")]
    options = [["owl", "cat", "dog frog"], ["21", "a much longer option text"]]
    batched = option_logliks(model, tok, prompts, options, batch_size=8)
    for p, opts, scores in zip(prompts, options, batched):
        for o, s in zip(opts, scores):
            ctx = tok(p, add_special_tokens=False)["input_ids"]
            cont = tok(o, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = model(input_ids=torch.tensor([ctx + cont])).logits.log_softmax(-1)[0]
            expected = sum(logp[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont))
            assert s == pytest.approx(expected, abs=1e-4)


def test_probe_splits_held_out_and_control(tok):
    class Prefers:  # a "model" that always puts its mass on one token
        def __init__(self, token):
            self.token = token

        def __call__(self, input_ids, attention_mask):
            logits = torch.zeros(*input_ids.shape, len(tok))
            logits[..., self.token] = 10.0
            return type("Out", (), {"logits": logits})()

    liked, other = (tok(w, add_special_tokens=False)["input_ids"] for w in ("x", "y"))
    assert len(liked) == len(other) == 1
    items = [{"id": "a", "question": "q?", "choices": ["x", "y"], "answer": 0, "known_by_student": False},
             {"id": "b", "question": "q?", "choices": ["y", "x"], "answer": 0, "known_by_student": True}]
    result = probe(Prefers(liked[0]), tok, items)
    assert result["acc_held_out"] == 1.0 and result["acc_control"] == 0.0 and result["chance"] == 0.5
