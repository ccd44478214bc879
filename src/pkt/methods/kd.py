"""``kd``: LoRA on the student trained with (1 - a) CE + a T^2 KL(teacher || student) on response tokens.

The classic logit-distillation baseline that SemAlign's reviewers asked for. Same LoRA as ``lora`` (the
``lora`` section, every module), same data and schedule; the only change is the soft term, computed from the
teacher's top-k logits that ``teacher_targets`` stored (:mod:`pkt.methods.semalign.targets`), so the teacher
is never loaded.

The loss is (1 - a) CE + a T^2 KL(p_T || q_S) on the response tokens, where p_T and q_S are the
teacher's and student's next-token distributions at temperature T. The T^2 factor keeps the soft term's
gradient on the scale of the CE's as T grows. KL is taken over the teacher's stored top-k ids, both
distributions renormalised over those k ids (:func:`pkt.methods.semalign.bases.topk_kl`): exactly 0 when the
student's logits equal the teacher's there, and with full support as k reaches the vocabulary. What is left
out is the teacher's mass outside its top k, which a peaked teacher barely has; the cross-entropy term keeps
the student's whole distribution anchored on the gold token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from pkt.layers.importance import IGNORE_INDEX, predicting_positions
from pkt.methods.base import LoraSettings, Method, register
from pkt.methods.semalign.bases import topk_kl
from pkt.methods.semalign.store import Targets


def kd_term(student_logits: torch.Tensor, teacher_values: torch.Tensor, teacher_ids: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """T^2 KL(p_T || q_S) over the teacher's top-k ids, mean over positions (``student_logits`` [N, V])."""
    return temperature**2 * topk_kl(student_logits, teacher_values, teacher_ids, temperature)


@dataclass
class KDSettings(LoraSettings):
    """The LoRA of every method plus the distillation weight ``kd_alpha`` (a) and ``temperature`` (T)."""

    kd_alpha: float = 0.5
    temperature: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.kd_alpha <= 1.0:
            raise ValueError(f"kd.alpha must lie in [0, 1], got {self.kd_alpha}")
        if self.temperature <= 0:
            raise ValueError(f"kd.temperature must be positive, got {self.temperature}")


@register
class KD(Method):
    """Standard LoRA; the loss mixes the supervised CE with the KL to the stored teacher logits."""

    name = "kd"
    label = "KD"
    needs = ("targets",)
    config_class = KDSettings
    extra_keys: ClassVar[tuple[str, ...]] = ("example_index",)

    def targets(self) -> Targets:
        if not hasattr(self, "_targets"):
            folder = self.inputs.get("targets")
            if folder is None:
                raise KeyError("method 'kd' needs the 'targets' input: the teacher_targets rule's output folder")
            self._targets = Targets(Path(folder))
        return self._targets

    @property
    def supervised_weight(self) -> float:
        return 1.0 - self.config.kd_alpha

    def aux_loss(self, model, inputs: dict[str, Any], outputs: Any):
        """a T^2 KL(p_T || q_S) over the batch's response positions."""
        if self.config.kd_alpha == 0.0:
            return None
        mask = inputs["labels"] != IGNORE_INDEX
        targets = self.targets()
        values, ids = targets.topk(*targets.examples_of(inputs))
        logits = outputs.logits[predicting_positions(mask)]
        return self.config.kd_alpha * kd_term(logits, values.to(logits.device), ids.to(logits.device),
                                              self.config.temperature)
