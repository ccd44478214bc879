"""``semalign``: LoRA on the paired student layer(s), trained to match the teacher's mapped activations.

SemAlign (Gu et al., arXiv 2510.24208). The ``teacher_targets`` rule stored,
at every position that predicts a response token of the train split, the teacher's paired-layer signal and
the matrices that map it into the student's space through the vocabulary-defined semantic bases
(:mod:`pkt.methods.semalign.targets`); ``map`` picks the coefficient rule (``logit`` or ``cosine``:
:mod:`pkt.methods.semalign.bases`). Training adds LoRA to v_proj, o_proj, up_proj and down_proj of the
paired student layer(s) only (so only those layers change) and minimises, with ``variant``, both terms at
the same positions (those that predict a response token):

* ``v1`` (arXiv v1, the published numbers): w_layer (1 - cos(student's signal, target)) averaged over the
  response tokens + w_out (1 - cos(logits, one-hot gold));
* ``v2`` (arXiv v2): w_layer times the relational loss (centred token-token cosine geometry of each
  sequence) + w_out KL(teacher top-k || student); with several pairs, training runs shallow to deep and
  only the frontier layer is trainable (and aligned) in each stage of equal length.

``ce`` weighs the usual cross-entropy (0 by default: the paper's objective is the two terms alone).
With ``align_steps`` > 0, v1's alignment phase (Appendix A.2) runs first: that many steps of the layer term
alone on the task's align split (targets in ``<targets>/align``) at ``align_lr``.
LoRA starts with B = 0, so the student is unchanged at step 0; the adapter is a plain peft LoRA.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch

from pkt.layers.importance import IGNORE_INDEX, decoder_layers, hidden_state, layer_input, predicting_positions
from pkt.methods.base import LoraSettings, Method, register
from pkt.methods.semalign.bases import MAPS, layer_cosine_loss, map_rows, onehot_output_loss, relational_loss, topk_kl
from pkt.methods.semalign.store import Targets, load_map
from pkt.methods.semalign.targets import residual_signal

VARIANTS = ("v1", "v2")


@dataclass
class SemAlignSettings(LoraSettings):
    """LoRA on the paired layers' v/o/up/down (Appendix A.2) and the objective's variant and weights."""

    target_modules: list[str] = field(default_factory=lambda: ["v_proj", "o_proj", "up_proj", "down_proj"])
    variant: str = "v1"
    map: str = "logit"  # the coefficient rule of Eq. 1: logit (M = pinv(W_S) W_T) | cosine (M = S_S S_T^T)
    layer_weight: float = 1.0
    output_weight: float = 1.0
    ce_weight: float = 0.0
    align_steps: int = 0  # v1's alignment phase: steps of the layer term alone on the align split
    align_lr: float = 1e-4

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"semalign.variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.map not in MAPS:
            raise ValueError(f"semalign.map must be one of {MAPS}, got {self.map!r}")


@register
class SemAlign(Method):
    """Aligns the paired student layers with the stored teacher targets (module docstring)."""

    name = "semalign"
    label = "SemAlign"
    needs = ("targets", "align_split")  # the align split: v1's alignment phase
    config_class = SemAlignSettings
    extra_keys: ClassVar[tuple[str, ...]] = ("example_index",)

    aligning: bool = False

    def targets(self) -> Targets:
        """The train split's stored targets, or the align split's (``<targets>/align``) during alignment."""
        folder = self.inputs.get("targets")
        if folder is None:
            raise KeyError(f"method {self.name!r} needs the 'targets' input: the teacher_targets rule's output folder")
        key = "_align_targets" if self.aligning else "_targets"
        if not hasattr(self, key):
            setattr(self, key, Targets(Path(folder) / "align" if self.aligning else Path(folder)))
        return getattr(self, key)

    def matrix(self, device) -> torch.Tensor:
        """The [D_S, D_T] matrix of ``map``, stored with the task's targets: read once and moved to ``device``
        once, not at every step."""
        if not hasattr(self, "_matrix") or self._matrix.device != torch.device(device):
            self._matrix = load_map(self.inputs["targets"], self.config.map).to(device)
        return self._matrix

    def mapped(self, k: int, examples: list[int], counts: list[int], device) -> list[torch.Tensor]:
        """Per example, the [count, D_S] targets of student layer k: its teacher rows through ``map``."""
        matrix = self.matrix(device)
        return [map_rows(rows.to(device), matrix, self.config.map)
                for rows in self.targets().teacher_layer(k, examples, counts)]

    @property
    def supervised_weight(self) -> float:
        return 0.0 if self.aligning else self.config.ce_weight

    def align_phase(self) -> dict[str, Any] | None:
        """v1's alignment phase (SemAlign arXiv v1, Appendix A.2): a few steps of the layer term on the align split."""
        if self.config.align_steps <= 0:
            return None
        split = self.inputs.get("align_split")
        if split is None:
            raise KeyError("semalign.align.steps > 0 needs the 'align_split' input (the task's align split)")
        return {"split": split, "steps": self.config.align_steps, "lr": self.config.align_lr}

    def begin_align(self) -> None:
        self.aligning = True

    def end_align(self) -> None:
        self.aligning = False

    def init_adapter(self, model, tokenizer):
        """LoRA (standard init) on the target modules of the paired student layers only; hooks on those layers."""
        from peft import get_peft_model

        targets = self.targets()
        self.layers = [k - 1 for k in targets.layers]  # 0-indexed modules, shallow to deep
        settings = dataclasses.replace(self.config, layers=self.layers)
        model = get_peft_model(model, settings.peft_config())
        self.signal = targets.index["signal"]
        self.captured: dict[int, torch.Tensor] = {}
        self.inputs_of: dict[int, torch.Tensor] = {}
        blocks = decoder_layers(model)
        for i in self.layers:
            blocks[i].register_forward_hook(partial(self._keep_output, i))
            blocks[i].register_forward_pre_hook(partial(self._keep_input, i), with_kwargs=True)
        self.frontier = 0
        return model

    def _keep_output(self, i: int, _module, _args, out) -> None:
        self.captured[i] = hidden_state(out)

    def _keep_input(self, i: int, _module, args, kwargs) -> None:
        self.inputs_of[i] = layer_input(args, kwargs)

    def callbacks(self) -> list[Any]:
        """v2 with several pairs: shallow-to-deep stages, only the frontier layer's LoRA trainable."""
        if self.config.variant != "v2" or len(self.layers) < 2:
            return []
        from transformers import TrainerCallback

        method = self

        class Frontier(TrainerCallback):
            def on_step_begin(self, args, state, control, model=None, **kwargs):
                stage = min(len(method.layers) - 1, state.global_step * len(method.layers) // max(state.max_steps, 1))
                if stage != method.frontier or state.global_step == 0:
                    method.frontier = stage
                    keep = f"layers.{method.layers[stage]}."
                    for name, p in model.named_parameters():
                        if "lora_" in name:
                            p.requires_grad_(keep in name)

        return [Frontier()]

    def aux_loss(self, model, inputs: dict[str, Any], outputs: Any):
        """w_layer * layer term + w_out * output term for this batch (module docstring)."""
        labels = inputs["labels"]
        prev = predicting_positions(labels != IGNORE_INDEX)  # where both terms are scored (module docstring)
        targets = self.targets()
        examples, counts = targets.examples_of(inputs)
        layers = self.layers if self.config.variant == "v1" else [self.layers[self.frontier]]
        layer_terms = []
        for i in layers:
            signal = residual_signal(self.captured[i], self.inputs_of.get(i), self.signal)
            wanted = self.mapped(i + 1, examples, counts, signal.device)
            if self.config.variant == "v1":
                layer_terms.append(layer_cosine_loss(signal[prev], torch.cat(wanted)))
            else:
                per_seq = [relational_loss(signal[b][prev[b]], wanted[b]) for b in range(len(examples)) if counts[b]]
                layer_terms.append(torch.stack(per_seq).mean())
        layer_term = torch.stack(layer_terms).mean()
        if self.config.variant == "v1":
            output_term = onehot_output_loss(outputs.logits, labels)
        else:
            values, ids = targets.topk(examples, counts)
            output_term = topk_kl(outputs.logits[prev], values.to(outputs.logits.device), ids.to(outputs.logits.device))
        if self.aligning:  # the alignment phase trains the layer term alone
            return layer_term
        return self.config.layer_weight * layer_term + self.config.output_weight * output_term
