"""Build, pretrain, save and load the models of the pipeline.

Toy scale: tiny ``LlamaForCausalLM`` teachers and students, trained from scratch on their
pretraining corpora with transformers' ``Trainer``. The LM head is untied, as in Llama-2, because
SemAlign's semantic bases are the pseudo-inverse of the *output* head.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from pkt.data.records import encode_documents, ensure_pad_token
from pkt.io import atomic_dir, read_jsonl, write_json
from pkt.models.hub import identity, model_files
from pkt.runtime import cpu_provenance

log = logging.getLogger(__name__)


def llama_config(arch: dict[str, Any], tokenizer) -> Any:
    """A ``LlamaConfig`` from the ``models.<name>`` config section and the shared tokenizer."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch["hidden_size"],
        intermediate_size=arch["intermediate_size"],
        num_hidden_layers=arch["num_layers"],
        num_attention_heads=arch["num_heads"],
        num_key_value_heads=arch["num_heads"],
        max_position_embeddings=arch["max_position_embeddings"],
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def pack_corpus(docs: list[str], tokenizer, seq_len: int, seed: int, n_blocks: int) -> tuple[list[list[int]], int]:
    """``n_blocks`` blocks of ``seq_len`` tokens: documents + EOS, reshuffled and re-packed every epoch.

    Re-packing matters: with one fixed packing a model can memorise each block from the documents
    around a fact instead of learning the fact from its own question (loss near zero, probe at chance).
    Chat documents are tokenised as prompt + response (:func:`pkt.data.records.encode_documents`), the split
    that fine-tuning and evaluation see. Returns the blocks and the corpus size in tokens (EOS included).
    """
    encoded = encode_documents(docs, tokenizer)
    total = sum(len(seq) + 1 for seq in encoded)
    if total < seq_len:
        raise ValueError(f"corpus of {total} tokens is shorter than one block of seq_len={seq_len}")
    rng = random.Random(seed)
    blocks: list[list[int]] = []
    while len(blocks) < n_blocks:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        ids = [tok for i in order for tok in (*encoded[i], tokenizer.eos_token_id)]
        blocks.extend(ids[i : i + seq_len] for i in range(0, len(ids) - seq_len + 1, seq_len))
    return blocks[:n_blocks], total


def pretrain(
    corpus_path: str | os.PathLike[str],
    tokenizer_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    arch: dict[str, Any],
    train: dict[str, Any],
    device: str = "cpu",
    name: str = "model",
) -> dict[str, Any]:
    """Pretrain a tiny Llama from scratch on one corpus; save model, tokenizer and training figures.

    The output directory appears only when training has finished (written under a temporary name).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, LlamaForCausalLM, Trainer, TrainingArguments, default_data_collator

    tokenizer = AutoTokenizer.from_pretrained(with_tokenizer(tokenizer_dir))
    docs = [r["text"] for r in read_jsonl(corpus_path)]
    n_blocks = train["steps"] * train["batch_size"]
    blocks, corpus_tokens = pack_corpus(docs, tokenizer, train["seq_len"], train["seed"], n_blocks)
    dataset = Dataset.from_dict({"input_ids": blocks, "labels": blocks})
    torch.manual_seed(train["seed"])
    model = LlamaForCausalLM(llama_config(arch, tokenizer))
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%s: %.2fM parameters, corpus of %d tokens", name, n_params / 1e6, corpus_tokens)

    with atomic_dir(out_dir) as tmp, tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            max_steps=train["steps"],
            per_device_train_batch_size=train["batch_size"],
            learning_rate=train["lr"],
            lr_scheduler_type="cosine_with_min_lr",
            lr_scheduler_kwargs={"min_lr_rate": train["min_lr_ratio"]},
            warmup_steps=train["warmup_steps"],
            adam_beta1=0.9,
            adam_beta2=0.95,
            weight_decay=0.0,
            max_grad_norm=1.0,
            logging_steps=max(1, train["steps"] // 20),
            save_strategy="no",
            report_to="none",
            seed=train["seed"],
            data_seed=train["seed"],
            use_cpu=device == "cpu",
            bf16=device.startswith("cuda"),
            dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=default_data_collator)
        start = time.perf_counter()
        result = trainer.train()
        wall = time.perf_counter() - start
        losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tokens = train["steps"] * train["batch_size"] * train["seq_len"]
        figures = {
            "name": name,
            "parameters": n_params,
            "steps": train["steps"],
            "tokens": tokens,
            "epochs": round(tokens / corpus_tokens, 2),
            "corpus_tokens": corpus_tokens,
            "final_loss": losses[-1][1] if losses else float(result.training_loss),
            "mean_loss": float(result.training_loss),
            "loss_curve": losses,
            "wall_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1),
            "device": device,
        }
        write_json(Path(tmp) / "training.json", figures)
        write_json(Path(tmp) / "provenance.json", {"name": name, "source": "pretrained from scratch (toy)",
                                                   "identity": identity(model_files(Path(tmp))),
                                                   "cpu": cpu_provenance() if device == "cpu" else None})
    log.info("%s: final loss %.3f after %d steps in %.1fs", name, figures["final_loss"], train["steps"], wall)
    return figures


def run_dtype(device: str) -> str:
    """The dtype every stage loads models in: bf16 on a GPU (a 13B teacher in 26 GB), fp32 on the CPU."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def load_model(model_dir: str | os.PathLike[str], device: str = "cpu", dtype: str | None = None):
    """Load a saved model and its tokenizer for inference, on ``device`` in ``dtype`` (default: the run's,
    :func:`run_dtype`), naming the directory if it is missing. The weights load straight onto the device."""
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(model_dir)
    tokenizer = load_tokenizer(path)
    dtype = getattr(torch, dtype or run_dtype(device))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, device_map=device).eval()
    return model, tokenizer


def load_tokenizer(model_dir: str | os.PathLike[str]):
    """A saved model's tokenizer, with a pad token (Llama tokenizers have none), naming a missing model."""
    from transformers import AutoTokenizer

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model at {path} (config.json missing): run prepare_model first")
    return ensure_pad_token(AutoTokenizer.from_pretrained(with_tokenizer(path)))


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")  # fast, sentencepiece, BPE vocabulary


def with_tokenizer(path: str | os.PathLike[str]) -> Path:
    """``path``, refused with its name if it holds no tokenizer file. Snakemake checks a directory output by
    its existence only, so a model folder that lost its tokenizer.json dry-runs as complete; transformers
    would then ask for sentencepiece, naming neither the folder nor the file."""
    folder = Path(path)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{folder}: no tokenizer ({' / '.join(TOKENIZER_FILES)} missing); restore the folder "
                                f"(dvc checkout) or rerun the job that wrote it (snakemake --forcerun on {folder})")
    return folder


def saved_config(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A saved model's ``config.json`` (its sizes), read without building anything."""
    import json

    return json.loads((Path(model_dir) / "config.json").read_text())


def load_tensor(model_dir: str | os.PathLike[str], name: str):
    """One saved tensor (e.g. ``lm_head.weight``) read from a model's safetensors, without building the model."""
    import json

    from safetensors import safe_open

    path = Path(model_dir)
    index = path / "model.safetensors.index.json"
    shard = json.loads(index.read_text())["weight_map"].get(name) if index.is_file() else "model.safetensors"
    if shard is None or not (path / shard).is_file():
        raise KeyError(f"no tensor {name!r} in the safetensors of {path}")
    with safe_open(str(path / shard), framework="pt") as f:
        names = set(f.keys())
        if name not in names:
            raise KeyError(f"no tensor {name!r} in {path / shard}")
        return f.get_tensor(name)


def load_output_head(model_dir: str | os.PathLike[str]):
    """The LM head [V, D] of a saved model, without building it: ``lm_head.weight``, or, for a model whose
    head is tied to its input embedding (SmolLM2, Qwen2.5: the checkpoint stores no head), the embedding."""
    path = Path(model_dir)
    try:
        return load_tensor(path, "lm_head.weight")
    except KeyError:
        if not saved_config(path).get("tie_word_embeddings", False):
            raise KeyError(f"{path} stores no lm_head.weight and its config.json does not tie it to the input "
                           "embedding (tie_word_embeddings)") from None
        return load_tensor(path, "model.embed_tokens.weight")


def untie_output_head(model) -> bool:
    """Give a tied LM head its own copy of the weight (and the config ``tie_word_embeddings: false``), so that an
    in-place edit of the embedding leaves the head as it was; returns whether the head was tied."""
    import torch

    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if head is None or head.weight is not embed.weight:
        return False
    head.weight = torch.nn.Parameter(embed.weight.detach().clone(), requires_grad=embed.weight.requires_grad)
    model.config.tie_word_embeddings = False
    return True
