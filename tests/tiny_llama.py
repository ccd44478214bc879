"""Tiny random Llama models and right-padded supervised batches, shared by the method tests."""

from __future__ import annotations

import torch

VOCAB = 50
BOS = "<s>"


def tiny(d: int, layers: int, seed: int, vocab: int = VOCAB, tied: bool = False):
    """A random Llama of width ``d`` and ``layers`` blocks (2 heads, FFN 2d; the head untied unless ``tied``),
    in eval mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=tied)
    return LlamaForCausalLM(cfg).eval()


def batches(n: int = 6, size: int = 3) -> list[dict[str, torch.Tensor]]:
    """Right-padded batches of examples whose first 4 tokens are the prompt (labels -100)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for start in range(0, n, size):
        lengths = [9, 12, 7][: min(size, n - start)]
        width = max(lengths)
        ids = torch.randint(1, VOCAB, (len(lengths), width), generator=gen)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for b, length in enumerate(lengths):
            mask[b, :length] = 1
            labels[b, 4:length] = ids[b, 4:length]
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


def llama_like(tok):
    """A toy tokenizer turned Llama-style: a BOS ``<s>`` added to every encoding, no pad token."""
    from tokenizers import processors

    tok.add_special_tokens({"bos_token": BOS})
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.convert_tokens_to_ids(BOS))]
    )
    tok.pad_token = None
    return tok
