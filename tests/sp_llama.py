"""A sentencepiece-style Llama tokenizer, built offline and deterministically, for tests of the papers' format.

The toy tokenizers are byte-level BPEs, which mark a leading space with ``Ġ`` on any word. Llama's tokenizer
is a sentencepiece BPE: spaces become ``▁``, one ``▁`` is prepended to the start of the text only (the
``"first"`` scheme of a non-legacy Llama tokenizer), characters outside the vocabulary fall back to byte
tokens ``<0x..>`` (a newline is always ``<0x0A>``), ``<unk>``/``<s>``/``</s>`` are ids 0/1/2, the
post-processor adds the BOS ``<s>``, and there is no pad token. So a word at the start of a text is
``▁The`` but the same word right after a newline is ``The``: the property that decides whether a trainer that
tokenises prompt and response apart sees the tokens a trainer that tokenises them together sees.

:func:`sp_llama` learns its merges on the papers' splits (``../shared/data/paper_splits``): words split by a
``tokenizers`` pre-tokenizer that keeps newlines and digits apart and splits at ``▁`` (as sentencepiece's Llama
model does: no piece spans a newline, a word boundary or two digits), merges by :func:`learn_merges`, then
vocabulary and merges go into ``transformers``' own ``LlamaTokenizer`` (a ``tokenizers`` BPE with Metaspace,
``split=False``, byte fallback). :func:`fingerprint` names the result, so a fixture made with it can tell a
changed tokenizer from a changed encoder.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from collections import Counter, defaultdict
from functools import cache

from conftest import REPO

from pkt.io import read_jsonl

SPLITS = REPO.parent / "shared" / "data" / "paper_splits"
SPECIALS = ("<unk>", "<s>", "</s>")
RECORDS = 300  # the first records of each split learn the merges (the learner is plain Python: seconds)
VOCAB_SIZE = 3000
MIN_FREQUENCY = 2
ALPHABET = 150  # the most frequent characters; the rest fall back to bytes, as in Llama's vocabulary


def paper_texts() -> list[str]:
    """Every message of the first :data:`RECORDS` records of every paper split, in file-name order."""
    return [m["content"] for path in sorted(SPLITS.rglob("*_split.jsonl")) for r in read_jsonl(path)[:RECORDS]
            for m in r["messages"]]


def words(texts: list[str]) -> Counter[str]:
    """Counts of the words of ``texts`` split as sentencepiece's Llama model splits them: a newline alone, one
    digit alone, otherwise at each ``▁`` (spaces turned ``▁``, one prepended at the start of a text)."""
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split("\n", behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
    ])
    return Counter(w for t in texts for w, _ in pre.pre_tokenize_str(t))


def learn_merges(counts: Counter[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """(alphabet, merges) of a BPE learnt on word ``counts``, ties broken by the pair's text.

    ``tokenizers``' own trainer breaks ties between equally frequent pairs by hash-map order, which changes
    from process to process; this learner is the textbook one (merge the most frequent adjacent pair, update
    the counts of the words it touches) with a fixed order, so the tokenizer is the same on every run.
    """
    chars: Counter[str] = Counter()
    for w, n in counts.items():
        for c in w:
            chars[c] += n
    alphabet = sorted((c for c in chars if c != "\n"), key=lambda c: (-chars[c], c))[:ALPHABET]
    unknown = re.compile(f"[^{re.escape(''.join(alphabet))}]+")
    seqs, freq = [], []
    for w, n in sorted(counts.items()):
        for part in unknown.split(w):  # characters outside the alphabet: byte fallback, never merged
            if len(part) > 1:
                seqs.append(list(part))
                freq.append(n)
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, s in enumerate(seqs):
        for pair in zip(s, s[1:]):
            pairs[pair] += freq[i]
            where[pair].add(i)
    heap = [(-n, pair) for pair, n in pairs.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while heap and len(alphabet) + len(merges) < VOCAB_SIZE - 259:
        count, pair = heapq.heappop(heap)
        if -count != pairs.get(pair, 0):
            continue  # a stale entry: the pair's count changed since it was pushed
        if -count < MIN_FREQUENCY:
            break
        merges.append(pair)
        touched = set()
        for i in sorted(where.pop(pair)):
            s, out, j = seqs[i], [], 0
            while j < len(s):
                if s[j] == pair[0] and j + 1 < len(s) and s[j + 1] == pair[1]:
                    out.append(pair[0] + pair[1])
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            if len(out) == len(s):
                continue
            for p in zip(s, s[1:]):
                pairs[p] -= freq[i]
                touched.add(p)
            for p in zip(out, out[1:]):
                pairs[p] += freq[i]
                where[p].add(i)
                touched.add(p)
            seqs[i] = out
        del pairs[pair]
        for p in touched - {pair}:
            heapq.heappush(heap, (-pairs[p], p))
    return alphabet, merges


@cache
def sp_llama():
    """The tokenizer (module docstring): a ``transformers.LlamaTokenizer`` that adds a BOS and has no pad token.

    Cached: callers that change it (``add_bos_token = False``) must build their own with :func:`build`.
    """
    return build()


def build():
    """A fresh tokenizer of :func:`sp_llama`'s kind (not cached)."""
    from transformers import LlamaTokenizer

    alphabet, merges = _learned()
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    vocab.update({f"<0x{b:02X}>": len(SPECIALS) + b for b in range(256)})
    for piece in [*alphabet, *(a + b for a, b in merges)]:
        vocab.setdefault(piece, len(vocab))
    tok = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True, add_eos_token=False)
    assert tok.pad_token is None and tok.convert_tokens_to_ids(list(SPECIALS)) == [0, 1, 2]
    return tok


@cache
def _learned() -> tuple[list[str], list[tuple[str, str]]]:
    return learn_merges(words(paper_texts()))


def fingerprint(tok) -> str:
    """sha256 of the tokenizer's vocabulary and merges: equal fingerprints encode equally."""
    model = json.loads(tok.backend_tokenizer.to_str())["model"]
    blob = json.dumps([sorted(model["vocab"].items()), model["merges"]], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
