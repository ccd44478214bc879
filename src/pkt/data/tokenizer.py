"""The shared byte-level BPE tokenizer of the toy teacher and student.

SemAlign needs teacher and student to share one vocabulary (its semantic bases are indexed by
token), so the tokenizer is trained once, on the union of both pretraining corpora, and copied into
each model directory. Byte-level pre-tokenisation means every string encodes: no text maps to unk.
The vocabulary stays near 1.5k because the LM head dominates a tiny model's step time.
"""

from __future__ import annotations

from collections.abc import Iterable

from pkt.data.records import ASSISTANT, CHAT_TEMPLATE, EOS, PAD, SPECIAL_TOKENS, USER


def train_tokenizer(docs: Iterable[str], vocab_size: int, min_frequency: int = 2):
    """Train a byte-level BPE on ``docs`` and wrap it as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(docs, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[USER, ASSISTANT],
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.padding_side = "left"  # decoder-only generation pads on the left
    return tok


def check_same_vocab(teacher_tok, student_tok, teacher: str = "teacher", student: str = "student") -> None:
    """Fail with a message naming both models unless they share the exact token -> id mapping."""
    tv, sv = teacher_tok.get_vocab(), student_tok.get_vocab()
    if tv != sv:
        only_t = sorted(set(tv) - set(sv))[:5]
        only_s = sorted(set(sv) - set(tv))[:5]
        moved = sorted(t for t in set(tv) & set(sv) if tv[t] != sv[t])[:5]
        raise ValueError(
            f"models {teacher!r} and {student!r} have different vocabularies ({len(tv)} vs {len(sv)} tokens; "
            f"only in {teacher}: {only_t}, only in {student}: {only_s}, different ids: {moved}). "
            "SemAlign's semantic bases and shared positions need one tokenizer for both."
        )
