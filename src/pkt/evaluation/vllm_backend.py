"""lm-eval's vLLM backend for paper-scale evaluation (``evaluation.backend: vllm``), where vLLM is installed.

Generation dominates a 7B evaluation (HumanEval, MBPP and GSM8K generate up to 512 tokens per item), and
vLLM's continuous batching does it several times faster than transformers' ``generate``. Each adapter is
merged into a copy of the student's weights and saved once to scratch, then served by its own engine:
vLLM's LoRA path takes neither the embedding/LM-head adapters of the LoRA and Seeking rows nor LaTen's
per-module ranks, and a merged model is the same function (W + s B A). Engines are built one at a time
and released before the next, so one GPU holds one model.

The merge is done in fp32 (exact to fp32's rounding); the merged weights are then stored in the dtype served.
In bf16 or fp16 the delta entries below half a unit in the last place of their weight round away (the toy's
adapters in bf16: 95% of LaTen's entries, 1-7% of the trained LoRAs'; the HF backend keeps adapters unmerged
instead, :func:`pkt.evaluation.evaluate.load_lm`). Each merge counts them (:attr:`VLLMModels.rounding`) and
warns; ``evaluation.dtype: float32`` serves them exactly, at twice the memory.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def require_vllm() -> None:
    """Fail before any model loads when the backend is asked for but not installed."""
    if importlib.util.find_spec("vllm") is None:
        raise RuntimeError("evaluation.backend is vllm but the vllm package is not installed: `pip install vllm` "
                           "on a GPU machine, or set evaluation.backend: hf")


def serve_dtype(model_dir: str | os.PathLike[str], setting: str) -> str:
    """The dtype vLLM serves in, by name, for ``evaluation.dtype``: "run" = bf16 (a GPU run's); "auto" = the
    checkpoint's own ``torch_dtype`` (fp32 when it names none), as the HF backend loads it, rather than vLLM's
    "auto", which serves an fp32 checkpoint in fp16; else the name given."""
    if setting == "run":
        return "bfloat16"
    if setting != "auto":
        return setting
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return str(config.get("dtype") or config.get("torch_dtype") or "float32").removeprefix("torch.")


class VLLMModels:
    """One vLLM engine at a time over a base model and its adapters (``{name: adapter dir}``)."""

    def __init__(self, model_dir: str | os.PathLike[str], adapters: dict[str, Any] | None, batch_size: int,
                 max_length: int | None, scratch: str | os.PathLike[str], dtype: str = "run"):
        require_vllm()
        self.model_dir, self.adapters = Path(model_dir), {k: Path(v) for k, v in (adapters or {}).items()}
        self.dtype = serve_dtype(self.model_dir, dtype)
        self.batch_size, self.max_length, self.scratch = batch_size, max_length, Path(scratch)
        self.current: tuple[str | None, Any] | None = None
        self.rounding: dict[str, dict[str, Any]] = {}  # per merged adapter: delta entries the served dtype lost

    def lm(self, adapter: str | None = None):
        """lm-eval's ``VLLM`` serving the base model, or the base with ``adapter`` merged."""
        if self.current and self.current[0] == adapter:
            return self.current[1]
        self.release()
        from lm_eval.models.vllm_causallms import VLLM

        path = self.model_dir if adapter is None else self._merged(adapter)
        lm = VLLM(pretrained=str(path), dtype=self.dtype, batch_size="auto", max_length=self.max_length)
        self.current = (adapter, lm)
        return lm

    def _merged(self, adapter: str) -> Path:
        """The base with one adapter merged in fp32, saved under scratch in the served dtype with the base's
        tokenizer; the delta entries that dtype rounds away are counted (:attr:`rounding`) and warned about."""
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from pkt.evaluation.evaluate import rounded_away
        from pkt.models.build import untie_output_head

        if adapter not in self.adapters:
            raise KeyError(f"no adapter named {adapter!r}; loaded: {sorted(self.adapters)}")
        out = self.scratch / f"merged-{adapter}"
        if not (out / "config.json").is_file():
            served = getattr(torch, self.dtype)
            base = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
            untie_output_head(base)  # a tied head's LoRA must not edit the embedding, as in load_lm
            peft = PeftModel.from_pretrained(base, str(self.adapters[adapter]))
            lost, changed = rounded_away(peft, served)
            self.rounding[adapter] = {"dtype": self.dtype, "lost": lost, "changed": changed}
            if lost and served != torch.float32:  # fp32 loses only deltas 2^-24 of their weight
                log.warning("adapter %s: %d of its %d delta entries (%.1f%%) round away in its weights merged and "
                            "served in %s (evaluation.dtype: float32 serves them exactly)", adapter, lost, changed,
                            100 * lost / changed, self.dtype)
            merged = peft.merge_and_unload()  # in fp32: W + s B A to fp32's rounding
            merged.to(served).save_pretrained(out)
            AutoTokenizer.from_pretrained(self.model_dir).save_pretrained(out)
            del base, peft, merged
        return out

    def release(self) -> None:
        """Free the current engine's GPU memory and its merged weights on disk."""
        if self.current is None:
            return
        name, lm = self.current
        self.current = None
        del lm
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if name is not None:
            shutil.rmtree(self.scratch / f"merged-{name}", ignore_errors=True)
