"""``lora``: the student fine-tuned with standard LoRA (the papers' "7B-LoRA" row)."""

from __future__ import annotations

from pkt.methods.base import LoraSettings, Method, register


@register
class Lora(Method):
    """Standard LoRA init (A Kaiming-uniform, B zero), supervised loss on response tokens only."""

    name = "lora"
    label = "LoRA"
    config_class = LoraSettings
