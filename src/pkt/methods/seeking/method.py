"""``seeking``: LoRA that starts from the teacher's extracted weights (Seeking Neural Nuggets, "+13B Param.").

The ``extract_seeking`` rule cuts rank-r factors (B0, A0) out of the teacher (:mod:`pkt.methods.seeking.extract`). Here
the trainable LoRA starts from (B0, A0) / sqrt(s) (s = alpha / r: its delta s B A is then the extracted block
B0 A0 for any alpha, as at the reference's alpha = r), the student's base weights become W - B0 A0, and
training is the same as ``lora``'s: the student is unchanged at step 0, only the starting point of the
optimisation carries the teacher's knowledge (Seeking Neural Nuggets, Section 3). Modules the extraction did not
cover (or LoRA targets outside the transferred groups) start from the standard init.

The adapter written at the end is a standard peft LoRA of rank 2r on the *vanilla* student (B = [B', -B0 / sqrt(s)],
A = [A'; A0 / sqrt(s)], alpha doubled), so evaluation loads it like any other method's adapter.

A student whose LM head is tied to its input embedding (SmolLM2, Qwen2.5) has its head untied for training
(:func:`pkt.models.build.untie_output_head`): the delta trick then edits the embedding alone, and the exported
adapter's embedding and head terms each reproduce their trained module on the vanilla, tied student, where peft keeps
one LoRA per module over the shared weight.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path

import torch

from pkt.methods.base import LoraSettings, Method, register
from pkt.methods.seeking.extract import load_factors, stack_adapter, start_factors, subtract_delta
from pkt.models.build import untie_output_head

log = logging.getLogger(__name__)
FACTORS = "factors.safetensors"
PEFT_PREFIX = "base_model.model."
LORA_KEYS = {"lora_A.weight": "A", "lora_B.weight": "B", "lora_embedding_A": "A", "lora_embedding_B": "B"}


def _split_key(key: str) -> tuple[str, str]:
    """A peft state-dict key -> (module path in the base model, "A" or "B")."""
    for suffix, which in LORA_KEYS.items():
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1].removeprefix(PEFT_PREFIX), which
    raise ValueError(f"unexpected key {key!r} in a LoRA state dict")


@register
class Seeking(Method):
    """LoRA initialised from extracted teacher weights, with the delta subtracted from the base weights."""

    name = "seeking"
    label = "Seeking"
    needs = ("extract",)
    config_class = LoraSettings

    def factors_path(self) -> Path:
        folder = self.inputs.get("extract")
        if folder is None:
            raise KeyError("method 'seeking' needs the 'extract' input: the extract_seeking rule's output folder")
        path = Path(folder) / FACTORS
        if not path.is_file():
            raise FileNotFoundError(f"no extracted factors at {path}: run the extract_seeking rule first")
        return path

    def init_adapter(self, model, tokenizer):
        """W <- W - B0 A0 in the base model, then a peft LoRA whose extracted modules start at (B0, A0) / sqrt(s),
        so that its delta s B A is B0 A0 (s = alpha / r)."""
        from peft import get_peft_model

        settings = self.lora()
        scale = settings.alpha / settings.r
        factors = start_factors(load_factors(self.factors_path()), scale)
        leaves = sorted({module.rsplit(".", 1)[-1] for module in factors})
        targets = list(dict.fromkeys([*settings.target_modules, *leaves]))
        if len(targets) > len(settings.target_modules):
            log.info("seeking: LoRA also on %s (extracted, not in lora.target_modules)",
                     targets[len(settings.target_modules):])
        config = dataclasses.replace(settings, target_modules=targets).peft_config()
        for name, (b, a) in factors.items():
            if b.shape[1] != settings.r or a.shape[0] != settings.r:
                raise ValueError(f"extracted factors of {name} have rank {b.shape[1]}, lora.r is {settings.r}")
        if untie_output_head(model):
            log.info("seeking: the student's tied LM head is untied for training (the delta edits the embedding)")
        subtract_delta(model, factors, scale)  # W - s (B0 A0 / s): the extracted block
        model = get_peft_model(model, config)
        loaded = set()
        with torch.no_grad():
            for name, param in model.named_parameters():
                if ".default" not in name:
                    continue
                module, which = _split_key(name.replace(".default", ""))
                if module in factors:
                    value = factors[module][0 if which == "B" else 1]
                    param.copy_(value.to(param.dtype))
                    loaded.add(module)
        missing = sorted(set(factors) - loaded)
        if missing:
            raise ValueError(f"peft made no LoRA for the extracted modules {missing}")
        self.initial = factors  # the factors the LoRA started from, as scaled: the export subtracts exactly these
        return model

    def export_adapter(self, model, out_dir: Path) -> None:
        """Save B = [B', -B0 / sqrt(s)], A = [A'; A0 / sqrt(s)] at rank 2r, alpha doubled (the same s): the trained
        model W - B0 A0 + s B' A' on the vanilla student (``self.initial`` holds the scaled starting factors)."""
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        state = get_peft_model_state_dict(model, save_embedding_layers=False)
        trained: dict[str, dict[str, torch.Tensor]] = {}
        keys: dict[str, dict[str, str]] = {}
        for key, value in state.items():
            module, which = _split_key(key)
            trained.setdefault(module, {})[which] = value.detach().float().cpu()
            keys.setdefault(module, {})[which] = key
        pairs = {m: (t["B"], t["A"]) for m, t in trained.items()}
        initial = {m: (b.float(), a.float()) for m, (b, a) in self.initial.items()}
        stacked = stack_adapter(pairs, initial)
        tensors = {}
        for module, (b, a) in stacked.items():
            tensors[keys[module]["B"]], tensors[keys[module]["A"]] = b.contiguous(), a.contiguous()
        wide = copy.deepcopy(model.peft_config["default"])
        wide.r, wide.lora_alpha = 2 * wide.r, 2 * wide.lora_alpha  # the same scale alpha / r
        out_dir = Path(out_dir)
        wide.save_pretrained(str(out_dir))
        save_file(tensors, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
