"""Task records, the chat format, and reading/writing splits.

Every task record, toy or paper, carries the same chat-message schema,
``{"id", "task", "messages": [{"role": "user", ...}, {"role": "assistant", ...}], ...task fields}``.
The chat format is the Tulu/Open-Instruct one, in two renderings:

* evaluation (Open-Instruct's), and training on toy records: ``<|user|>\\n{user}\\n<|assistant|>\\n``
  (:func:`render_prompt`) then ``{assistant}<eos>``, prompt and response tokenised apart;
* training on the papers' records, which carry ``"format": "tulu-reference"`` (:data:`REFERENCE_FORMAT`,
  written by :mod:`pkt.data.paper`): the reference trainers'
  ``<|user|>\\n{user}\\n\\n<|assistant|>\\n{assistant}\\n\\n`` with both turns stripped (:func:`reference_chat`),
  tokenised whole, then ``<eos>``, with the prompt masked by its token count as each reference trainer counts
  it (:func:`encode_supervised`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pkt.io import atomic_path, sha256_file, write_json

USER = "<|user|>"
ASSISTANT = "<|assistant|>"
EOS = "<|endoftext|>"
PAD = "<pad>"
SPECIAL_TOKENS = (EOS, PAD, USER, ASSISTANT)
REFERENCE_FORMAT = "tulu-reference"  # a record's "format": it trains as the reference trainers render and mask it
TRAINERS = ("paraknowtransfer", "laten")  # whose masking rule a reference-format record follows
# The same format as a Jinja chat template, stored with the toy tokenizer so that lm-eval's
# apply_chat_template and transformers' pipelines render prompts exactly as render_prompt does.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}" + USER + "\n{{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}" + ASSISTANT + "\n{{ m['content'] }}" + EOS + "{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}" + ASSISTANT + "\n{% endif %}"
)


def render_prompt(user: str) -> str:
    """The text a model sees before it answers: the user turn and the assistant header."""
    return f"{USER}\n{user}\n{ASSISTANT}\n"


def chat_text(user: str, assistant: str) -> str:
    """A whole exchange as one document (the tokenizer adds the EOS after the assistant turn)."""
    return render_prompt(user) + assistant


def reference_prompt(user: str) -> str:
    """The user turn and assistant header as both reference trainers render them: the chat format of
    Open-Instruct's training code (a blank line after each turn), the user turn stripped."""
    return f"{USER}\n{user.strip()}\n\n{ASSISTANT}\n"


def reference_chat(user: str, assistant: str) -> str:
    """A whole exchange as the reference trainers train on it (``generate_chat_prompt`` of ParaKnowTransfer's
    utils/prompter.py and of Neural_Incompatibility's utils/utils.py): both turns stripped, each followed by
    a blank line; the EOS is appended to its tokens, not to the text."""
    return f"{reference_prompt(user)}{assistant.strip()}\n\n"


def is_reference(record: dict[str, Any]) -> bool:
    """Whether a record trains in the reference trainers' format (its ``format`` field; toy records have none)."""
    fmt = record.get("format")
    if fmt not in (None, REFERENCE_FORMAT):
        raise ValueError(f"record {record.get('id')!r}: unknown format {fmt!r} (known: {REFERENCE_FORMAT!r})")
    return fmt == REFERENCE_FORMAT


def split_chat(text: str) -> tuple[str, str]:
    """A chat document -> (prompt up to and including the assistant header, response); else (text, "")."""
    head = f"{ASSISTANT}\n"
    i = text.find(head)
    return (text, "") if i < 0 else (text[: i + len(head)], text[i + len(head) :])


def encode_documents(texts: list[str], tokenizer) -> list[list[int]]:
    """Token ids of pretraining documents; a chat document's prompt and response are tokenised apart.

    This is the split that training (:func:`encode_supervised`) and lm-eval (context, then generated
    continuation) use. Tokenised whole, ``"<|assistant|>\\n    return x"`` merges the newline with the
    indentation into one token, so a model pretrained on it has never seen a bare newline followed by an
    indented body, and cannot complete a HumanEval-style prompt that ends at the header's newline.
    """
    prompts, responses = zip(*(split_chat(t) for t in texts)) if texts else ((), ())
    p_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(list(responses), add_special_tokens=False)["input_ids"]
    return [p + r for p, r in zip(p_ids, r_ids)]


def make_record(task: str, user: str, assistant: str, **fields: Any) -> dict[str, Any]:
    """A task record in the shared schema; ``id`` is filled in when the split is written."""
    return {
        "task": task,
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
        **fields,
    }


def turns(record: dict[str, Any]) -> tuple[str, str]:
    """(user content, assistant content) of a record, checking that it is one [user, assistant] exchange."""
    messages = record["messages"]
    if len(messages) != 2 or messages[0]["role"] != "user" or messages[1]["role"] != "assistant":
        raise ValueError(f"record {record.get('id')!r}: expected [user, assistant] messages")
    return messages[0]["content"], messages[1]["content"]


def prompt_and_response(record: dict[str, Any]) -> tuple[str, str]:
    """(prompt text, response text) of a record as the toy format renders it: what is conditioned on, and
    what is scored."""
    user, assistant = turns(record)
    return render_prompt(user), assistant


def write_split(path: str | os.PathLike[str], records: list[dict[str, Any]], prefix: str) -> int:
    """Write records as JSONL through ``datasets`` (atomically), numbering ids ``<prefix>-00000``."""
    from datasets import Dataset

    rows = [{"id": f"{prefix}-{i:05d}", **r} for i, r in enumerate(records)]
    with atomic_path(path) as tmp:
        Dataset.from_list(rows).to_json(str(tmp), lines=True, force_ascii=False)
    return len(rows)


def load_split(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a split written by :func:`write_split` (plain JSON, no dataset cache needed), refused if it is not
    what the data manifest beside it recorded (:func:`pkt.data.manifest.verified`)."""
    from pkt.data.manifest import verified

    return verified(path)[0]


def write_manifest(root: str | os.PathLike[str], files: list[str | os.PathLike[str]], meta: dict) -> dict:
    """Record every output file's sha256 and record count in ``<root>/manifest.json``."""
    root = Path(root)
    entries = {}
    for f in files:
        p = Path(f)
        with open(p, encoding="utf-8") as fh:
            n = sum(1 for line in fh if line.strip())
        entries[str(p.relative_to(root))] = {"sha256": sha256_file(p), "records": n}
    manifest = {"files": entries, **meta}
    write_json(root / "manifest.json", manifest)
    return manifest


def ensure_pad_token(tokenizer):
    """Give a tokenizer without a pad token one, the way the ecosystem does (lm-eval, open-instruct).

    Llama-2/3 tokenizers have none. The unknown token is used where there is one, else EOS; padded
    positions are masked (attention 0, label -100) by :func:`collate`, so the choice never reaches a
    loss. Returns the tokenizer (changed in place).
    """
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
    return tokenizer


def encode_supervised(record: dict[str, Any], tokenizer, max_length: int, *, trainer: str = "paraknowtransfer",
                      train_on_inputs: bool = False) -> dict[str, list[int]] | None:
    """Token ids of prompt + response + EOS, with labels -100 on the prompt: loss on the response only.

    One rule for every stage that scores a record (training, importance, sensitivity, targets):

    * text and special tokens, toy records: the prompt (:func:`render_prompt`) is encoded as lm-eval encodes
      a context, with the tokenizer's own special tokens (a Llama tokenizer's BOS ``<s>``); the response
      without, then the EOS. Prompt and response are tokenised apart, the split lm-eval generates from.
    * text and special tokens, reference-format records (:func:`is_reference`): :func:`reference_chat` is
      tokenised whole and the EOS appended (unless its last token is one), as each reference trainer does; the
      labels are -100 on the first *n* tokens, *n* counted as that ``trainer`` counts the prompt
      (:func:`reference_prompt`) tokenised alone (:func:`_reference_ids`). So a Llama tokenizer marks the
      response's first word ``The`` (after the header's newline), not ``▁The`` as a response tokenised alone;
    * ``train_on_inputs``: every token is labelled (LaTen's README setting for MMLU, whose one-letter answers
      give too little gradient), any record. LaTen's own code, so set, raises at utils/utils.py:107 (it reads
      ``user_prompt``, assigned only when inputs are masked) after making exactly these tokens and labels;
    * length: the sequence is cut from the right at ``max_length``, as the reference trainers do, so the
      prompt (with its chat header) always stays whole and the example stays conditioned; a response cut this
      way loses its end and its EOS. This is the references' ``truncation=True, max_length=cutoff_len`` then
      "append the EOS only below ``cutoff_len``", token for token;
    * an example whose prompt (its *n* masked tokens) leaves no room for a single response token is dropped
      (None), with ``train_on_inputs`` too. Here the references differ: they keep such an example, all its
      labels -100 (no loss), or with ``train_on_inputs`` labelled on a prompt cut short.
    """
    return _encode(record, tokenizer, max_length, trainer, train_on_inputs)[0]


def _reference_ids(record: dict[str, Any], tokenizer, trainer: str) -> tuple[list[int], int]:
    """(ids of :func:`reference_chat` + EOS, number of prompt tokens to mask) as ``trainer``'s code makes them.

    * ``paraknowtransfer`` (Seeking; ParaKnowTransfer finetune.py ``tokenize`` and ``generate_and_tokenize_prompt``
      inside ``train``, lines 135-196): the tokenizer's own special tokens (a Llama BOS); the EOS appended
      (``tokenize``'s ``add_eos_token=True``, 145-151); the prompt tokenised with ``add_eos_token=False``
      (``train``'s default, line 53), so *n* = its tokens, BOS included.
    * ``laten`` (Neural_Incompatibility utils/utils.py ``generate_and_tokenize_prompt``, 53-105, with the
      tokenizers of train_LaTen.py 123-128: ``add_bos_token = False``): no BOS; the EOS appended (74-80);
      the prompt tokenised by the same ``tokenize``, so with an EOS too (97-100): *n* = its tokens + 1, and
      the response's first token is masked as well.
    """
    if trainer not in TRAINERS:
        raise ValueError(f"trainer {trainer!r}: expected one of {TRAINERS}")
    user, assistant = turns(record)
    specials = trainer == "paraknowtransfer"
    eos = tokenizer.eos_token_id
    ids = tokenizer(reference_chat(user, assistant), add_special_tokens=specials)["input_ids"]
    prompt = tokenizer(reference_prompt(user), add_special_tokens=specials)["input_ids"]
    with_eos = [*ids, eos] if ids[-1:] != [eos] else ids
    n = len(prompt) + (trainer == "laten" and prompt[-1:] != [eos])
    return with_eos, n


def _encode(record: dict[str, Any], tokenizer, max_length: int, trainer: str = "paraknowtransfer",
            train_on_inputs: bool = False) -> tuple[dict[str, list[int]] | None, bool]:
    """:func:`encode_supervised` and whether the length rule cut (or dropped) the example."""
    if is_reference(record):
        ids, n = _reference_ids(record, tokenizer, trainer)
    else:
        if trainer not in TRAINERS:
            raise ValueError(f"trainer {trainer!r}: expected one of {TRAINERS}")
        prompt, response = prompt_and_response(record)
        p = tokenizer(prompt)["input_ids"]
        ids, n = p + tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id], len(p)
    if n >= max_length:
        return None, True
    cut = len(ids) > max_length
    ids = ids[:max_length]
    labels = list(ids) if train_on_inputs else [-100] * n + ids[n:]
    return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}, cut


def encode_split(records: list[dict[str, Any]], tokenizer, max_length: int, *, trainer: str = "paraknowtransfer",
                 train_on_inputs: bool = False) -> tuple[list[dict], dict[str, int]]:
    """Encode every record by :func:`encode_supervised` (``trainer``, ``train_on_inputs`` as there); return the
    kept examples and what the rule did.

    The counts (``examples``, ``truncated``: response cut at ``max_length``, ``dropped``: prompt too long)
    go into each stage's output, so a reader sees how many examples the length rule touched.
    """
    kept, truncated = [], 0
    for record in records:
        enc, cut = _encode(record, tokenizer, max_length, trainer, train_on_inputs)
        if enc is not None:
            kept.append(enc)
            truncated += cut
    stats = {"examples": len(records), "kept": len(kept), "truncated": truncated, "dropped": len(records) - len(kept),
             "max_length": max_length}
    if not kept:
        raise ValueError(f"every one of {len(records)} examples has a prompt of max_length={max_length} tokens or "
                         "more: raise max_length")
    return kept, stats


def collate(examples: list[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a list of encoded examples into LongTensors (labels padded with -100); other integer
    fields of the examples become one LongTensor [B] each."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    out = {}
    for key, fill in (("input_ids", pad_id), ("labels", -100), ("attention_mask", 0)):
        out[key] = torch.tensor([e[key] + [fill] * (width - len(e[key])) for e in examples], dtype=torch.long)
    for key in examples[0].keys() - out.keys():  # per-example integers (example_index): one per row
        out[key] = torch.tensor([e[key] for e in examples], dtype=torch.long)
    return out


def supervised_batches(records: list[dict[str, Any]], tokenizer, batch_size: int, max_length: int, *,
                       trainer: str = "paraknowtransfer", train_on_inputs: bool = False
                       ) -> tuple[list[dict], dict[str, int]]:
    """Records -> padded batches for a forward/backward pass (importance, sensitivity, targets), and the
    length rule's counts (:func:`encode_split`, ``trainer`` and ``train_on_inputs`` as there)."""
    encoded, stats = encode_split(records, tokenizer, max_length, trainer=trainer, train_on_inputs=train_on_inputs)
    pad = ensure_pad_token(tokenizer).pad_token_id
    batches = [collate(encoded[i : i + batch_size], pad) for i in range(0, len(encoded), batch_size)]
    return batches, stats
