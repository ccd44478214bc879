"""lm-eval's vLLM backend for paper-scale evaluation (``evaluation.backend: vllm``), where vLLM is installed.

Generation dominates a 7B evaluation (HumanEval, MBPP and GSM8K generate up to 512 tokens per item), and
vLLM's continuous batching does it several times faster than transformers' ``generate``. Each adapter is
merged into a copy of the student's weights and saved once to scratch, then served by its own engine:
vLLM's LoRA path takes neither the embedding/LM-head adapters of the LoRA and Seeking rows nor LaTen's
per-module ranks, and a merged model is the same function (W + s B A). Engines are built one at a time
and released before the next, so one GPU holds one model.
"""

from __future__ import annotations

import gc
import importlib.util
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


class VLLMModels:
    """One vLLM engine at a time over a base model and its adapters (``{name: adapter dir}``)."""

    def __init__(self, model_dir: str | os.PathLike[str], adapters: dict[str, Any] | None, batch_size: int,
                 max_length: int | None, scratch: str | os.PathLike[str], dtype: str = "run"):
        require_vllm()
        self.model_dir, self.adapters = Path(model_dir), {k: Path(v) for k, v in (adapters or {}).items()}
        self.dtype = "bfloat16" if dtype == "run" else dtype  # vLLM takes "auto" (the checkpoint's) or a name
        self.batch_size, self.max_length, self.scratch = batch_size, max_length, Path(scratch)
        self.current: tuple[str | None, Any] | None = None

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
        """The base with one adapter merged, saved under scratch (evaluation dtype, the base's tokenizer)."""
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if adapter not in self.adapters:
            raise KeyError(f"no adapter named {adapter!r}; loaded: {sorted(self.adapters)}")
        out = self.scratch / f"merged-{adapter}"
        if not (out / "config.json").is_file():
            base = AutoModelForCausalLM.from_pretrained(
                self.model_dir, dtype="auto" if self.dtype == "auto" else getattr(torch, self.dtype))
            merged = PeftModel.from_pretrained(base, str(self.adapters[adapter])).merge_and_unload()
            merged.save_pretrained(out)
            AutoTokenizer.from_pretrained(self.model_dir).save_pretrained(out)
            del base, merged
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
