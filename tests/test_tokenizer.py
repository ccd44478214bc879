"""The shared tokenizer: round trip, special tokens, chat template, vocabulary check."""

from __future__ import annotations

import pytest

from pkt.data.records import ASSISTANT, USER, chat_text, render_prompt
from pkt.data.tokenizer import check_same_vocab, train_tokenizer
from pkt.data.toyworld import generate


@pytest.fixture(scope="module")
def corpus(request):
    from conftest import small_world

    world = generate(small_world())
    return world.corpora["teacher"] + world.corpora["student"]


@pytest.fixture(scope="module")
def tok(corpus):
    return train_tokenizer(corpus, vocab_size=600)


def test_round_trip_on_corpus_and_unseen_text(tok, corpus):
    for text in [*corpus[:50], "Ünïcødé ✓ and tabs\tand\nnewlines", "def f(x):\n    return x ** 2\n"]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_special_tokens_are_single_ids(tok):
    for special in (USER, ASSISTANT, tok.eos_token, tok.pad_token):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    assert tok.pad_token_id != tok.eos_token_id


def test_chat_template_renders_like_render_prompt(tok):
    messages = [{"role": "user", "content": "Where does Vorla live?"}]
    assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == render_prompt(
        messages[0]["content"]
    )
    full = messages + [{"role": "assistant", "content": "Avalo"}]
    assert tok.apply_chat_template(full, tokenize=False) == chat_text("Where does Vorla live?", "Avalo") + tok.eos_token


def test_vocab_size_is_bounded_by_config(tok):
    assert len(tok) <= 600


def test_same_vocab_passes_and_different_vocab_names_both_models(tok, corpus):
    check_same_vocab(tok, tok, "teacher", "student")
    other = train_tokenizer(corpus[:30], vocab_size=400)
    with pytest.raises(ValueError, match="'big'.*'small'"):
        check_same_vocab(tok, other, "big", "small")


def test_pretraining_documents_tokenise_like_evaluation_sees_them(tok):
    """A chat document's tokens start with exactly the prompt's tokens, as lm-eval's context has them.

    Tokenised whole, the header's newline merges with the body's indentation into one token, so a model
    pretrained on it never sees the context that a HumanEval-style prompt ends with.
    """
    from pkt.data.records import encode_documents, split_chat

    prompt = render_prompt('def add_3(x):\n    """Return `x` plus 3."""\n')
    body = "    return x + 3\n"
    whole = tok(prompt + body, add_special_tokens=False)["input_ids"]
    context = tok(prompt, add_special_tokens=False)["input_ids"]
    assert whole[: len(context)] != context  # the defect encode_documents exists for
    assert split_chat(prompt + body) == (prompt, body)
    assert split_chat("Avalo is a city.") == ("Avalo is a city.", "")
    doc, plain = encode_documents([prompt + body, "Avalo is a city."], tok)
    assert doc == context + tok(body, add_special_tokens=False)["input_ids"]
    assert plain == tok("Avalo is a city.", add_special_tokens=False)["input_ids"]
    assert tok.decode(doc) == prompt + body
