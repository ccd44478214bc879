"""``laten``: PrePKT (Neural Incompatibility): translate located teacher units, inject, no post-training.

For each task and seed (:mod:`pkt.methods.laten.translate`): train the translator on the task's extract split with
align mini-sets for the first ``steps`` steps of a schedule over the whole split (the reference's checkpoint after
that step is the one injected; the paper picks 2-8 per task by evaluation: ``laten.tasks``, which also sets
``train_on_inputs``, the README's MMLU setting; the settings arrive resolved for the task), then locate units on
*one* train example drawn with the seed, translate the teacher's vectors, and add them to the student. The adapter
written is a plain peft LoRA that reproduces the folded weights exactly on the vanilla student, so ``evaluate``
scores the injected student like any other row; ``training.json`` beside it
holds the plan, the translator's log and the delta's size.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pkt.io import atomic_dir, write_json
from pkt.methods.base import Method, register
from pkt.methods.laten.translate import (
    LatenSettings,
    delta_adapter,
    locate,
    teacher_vectors,
    train_translator,
    unit_counts,
)


@register
class Laten(Method):
    """No Trainer: :meth:`fit` aligns a translator and writes the injected delta as an adapter."""

    name = "laten"
    label = "LaTen"
    needs = ("teacher", "extract_split", "align_split")
    config_class = LatenSettings

    def _input(self, key: str) -> Path:
        if key not in self.inputs:
            raise KeyError(f"method 'laten' needs the {key!r} input (teacher, extract_split, align_split)")
        return Path(self.inputs[key])

    def fit(self, student_dir: Path, train_split: Path, out_dir: Path, seed: int, device: str,
            max_length: int) -> dict[str, Any]:
        import torch

        from pkt.data.records import load_split
        from pkt.models.build import load_model

        start = time.perf_counter()
        teacher, _ = load_model(self._input("teacher"), device)
        student, tokenizer = load_model(student_dir, device)  # the student's ids and pad: valid in both models
        extract, align = load_split(self._input("extract_split")), load_split(self._input("align_split"))
        records = load_split(train_split)
        if not extract or not records:
            raise ValueError(f"laten needs a non-empty extract split ({self.inputs['extract_split']}) and train "
                             f"split ({train_split})")
        settings = self.config
        translator, log = train_translator(teacher, student, tokenizer, extract, align, settings, seed, max_length)
        inject = random.Random(seed).choice(records)  # inference: one random train example (LaTen's inference_LaTen.py)
        plan = locate(teacher, student, inject, tokenizer, max_length, *unit_counts(student, settings.rate),
                      train_on_inputs=settings.train_on_inputs)
        with torch.no_grad():
            deltas = translator(teacher_vectors(teacher, plan))
        delta_norm = float(sum(d.pow(2).sum() for d in deltas.values()) ** 0.5)
        weight_norm = float(sum(p.detach().float().pow(2).sum() for p in student.parameters()) ** 0.5)
        figures = {
            "method": self.name, "seed": seed, "settings": asdict(settings), "steps": settings.steps,
            "translator_log": log,
            "loss_curve": [[r["step"], r["lm_loss"] + settings.mse_weight * r["penalty"]] for r in log],  # translator's
            "inject_example": inject.get("id"), "plan": plan.summary(),
            "delta_norm": delta_norm, "relative_delta_norm": delta_norm / weight_norm,
            "injection": "delta folded into the weights (a LoRA with B A = the delta, on the vanilla student)",
            "wall_s": round(time.perf_counter() - start, 2), "device": device,
        }
        model = delta_adapter(student, plan, deltas)
        with atomic_dir(out_dir) as tmp:
            model.save_pretrained(str(tmp))
            write_json(Path(tmp) / "training.json", figures)
        return figures
