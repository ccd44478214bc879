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


def encode_supervised(record: dict[str, Any], tokenizer, max_length: int) -> dict[str, list[int]]:
    """Token ids of prompt + response + EOS, with labels -100 on the prompt: loss on the response only.

    Prompt and response are tokenised separately and concatenated, the same split lm-eval scores
    continuations with. Over-long examples are cut from the left of the prompt so the response stays.
    """
    prompt, response = prompt_and_response(record)
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    r = r[:max_length]
    p = p[max(0, len(p) + len(r) - max_length) :]
    return {"input_ids": p + r, "labels": [-100] * len(p) + r, "attention_mask": [1] * (len(p) + len(r))}


def collate(examples: list[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a list of encoded examples into LongTensors (labels padded with -100)."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    out = {}
    for key, fill in (("input_ids", pad_id), ("labels", -100), ("attention_mask", 0)):
        out[key] = torch.tensor([e[key] + [fill] * (width - len(e[key])) for e in examples], dtype=torch.long)
    return out


def supervised_batches(records: list[dict[str, Any]], tokenizer, batch_size: int, max_length: int) -> list[dict]:
    """Records -> padded batches for a forward/backward pass (importance, sensitivity, targets)."""
    encoded = [encode_supervised(r, tokenizer, max_length) for r in records]
    return [collate(encoded[i : i + batch_size], tokenizer.pad_token_id) for i in range(0, len(encoded), batch_size)]
