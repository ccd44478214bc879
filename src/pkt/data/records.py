"""Task records, the chat format, and reading/writing splits.

Every task record, toy or paper, carries the same chat-message schema,
``{"id", "task", "messages": [{"role": "user", ...}, {"role": "assistant", ...}], ...task fields}``,
so that training (loss on the assistant turn only) and evaluation (prompt = the user turn) format
text identically. The chat format is the Tulu/Open-Instruct one that the Seeking paper trains with:
``<|user|>\\n{user}\\n<|assistant|>\\n{assistant}<eos>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pkt.io import atomic_path, read_jsonl, sha256_file, write_json

USER = "<|user|>"
ASSISTANT = "<|assistant|>"
EOS = "<|endoftext|>"
PAD = "<pad>"
SPECIAL_TOKENS = (EOS, PAD, USER, ASSISTANT)
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


def prompt_and_response(record: dict[str, Any]) -> tuple[str, str]:
    """(prompt text, response text) of a record: what is conditioned on, and what is scored."""
    messages = record["messages"]
    if len(messages) != 2 or messages[0]["role"] != "user" or messages[1]["role"] != "assistant":
        raise ValueError(f"record {record.get('id')!r}: expected [user, assistant] messages")
    return render_prompt(messages[0]["content"]), messages[1]["content"]


def write_split(path: str | os.PathLike[str], records: list[dict[str, Any]], prefix: str) -> int:
    """Write records as JSONL through ``datasets`` (atomically), numbering ids ``<prefix>-00000``."""
    from datasets import Dataset

    rows = [{"id": f"{prefix}-{i:05d}", **r} for i, r in enumerate(records)]
    with atomic_path(path) as tmp:
        Dataset.from_list(rows).to_json(str(tmp), lines=True, force_ascii=False)
    return len(rows)


def load_split(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a split written by :func:`write_split` (plain JSON, no dataset cache needed)."""
    return read_jsonl(path)


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


def encode_supervised(record: dict[str, Any], tokenizer, max_length: int) -> dict[str, list[int]] | None:
    """Token ids of prompt + response + EOS, with labels -100 on the prompt: loss on the response only.

    One rule for every stage that scores a record (training, importance, sensitivity, targets):

    * special tokens: the prompt is encoded as lm-eval encodes a context, with the tokenizer's own
      special tokens (a Llama tokenizer's BOS ``<s>``); the response without, then the EOS;
    * length: the joined sequence is cut from the right at ``max_length``, as the reference trainers do,
      so the prompt (with its chat header) always stays whole and the example stays conditioned; a
      response cut this way loses its end and its EOS;
    * an example whose prompt leaves no room for a single response token is dropped (None).

    Prompt and response are tokenised apart, the split lm-eval generates from.
    """
    return _encode(record, tokenizer, max_length)[0]


def _encode(record: dict[str, Any], tokenizer, max_length: int) -> tuple[dict[str, list[int]] | None, bool]:
    """:func:`encode_supervised` and whether the length rule cut (or dropped) the example."""
    prompt, response = prompt_and_response(record)
    p = tokenizer(prompt)["input_ids"]
    r = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(p) >= max_length:
        return None, True
    cut = len(p) + len(r) > max_length
    r = r[: max_length - len(p)]
    return {"input_ids": p + r, "labels": [-100] * len(p) + r, "attention_mask": [1] * (len(p) + len(r))}, cut


def encode_split(records: list[dict[str, Any]], tokenizer, max_length: int) -> tuple[list[dict], dict[str, int]]:
    """Encode every record by :func:`encode_supervised`; return the kept examples and what the rule did.

    The counts (``examples``, ``truncated``: response cut at ``max_length``, ``dropped``: prompt too long)
    go into each stage's output, so a reader sees how many examples the length rule touched.
    """
    kept, truncated = [], 0
    for record in records:
        enc, cut = _encode(record, tokenizer, max_length)
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


def supervised_batches(records: list[dict[str, Any]], tokenizer, batch_size: int, max_length: int
                       ) -> tuple[list[dict], dict[str, int]]:
    """Records -> padded batches for a forward/backward pass (importance, sensitivity, targets), and the
    length rule's counts (:func:`encode_split`)."""
    encoded, stats = encode_split(records, tokenizer, max_length)
    pad = ensure_pad_token(tokenizer).pad_token_id
    batches = [collate(encoded[i : i + batch_size], pad) for i in range(0, len(encoded), batch_size)]
    return batches, stats
