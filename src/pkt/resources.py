"""Cluster resources of a job, sized from the models it loads (portable keys only: mem_mb, runtime, gpu).

Snakemake rules declare these three (and ``threads``); partition, account, GPU type and constraints
belong to the site and live in ``profiles/slurm/config.yaml``. The numbers are estimates from the
configured architecture, so that a 13B teacher asks for more than a toy one without anyone editing a
rule: host memory is a fixed process overhead plus bytes per parameter of the stage's work, and the
time limit grows with the parameters and the units of work (tasks, seeds) one job does. A site whose
GPUs are faster or slower scales them in its profile (``set-resources``); a job that outgrows them is
retried by the profile's ``retries`` and resumes from its checkpoint where the stage has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PROCESS_MB = 4000  # Python + torch + transformers + peft + lm-eval, before any model is loaded
ROUND_MB = 1000


@dataclass(frozen=True)
class Stage:
    """What one unit of a stage's work costs, per billion parameters of the models it loads."""

    cpu_bytes: float  # host bytes per parameter when the models run on the CPU
    minutes: float  # minutes per billion parameters per unit of work on one GPU (floor below)
    floor: int  # the least time limit, minutes: a toy job still imports torch and writes its outputs
    gpu_host_bytes: float = 2.0  # host bytes per parameter when the models run on a GPU (below)


# On a GPU the weights live in GPU memory and the host only stages one checkpoint shard at a time:
# 2 bytes per parameter (bf16) cover that staging (Stage.gpu_host_bytes; Seeking adds its fp32 sums).

STAGES: dict[str, Stage] = {  # minutes: rough A100 figures for Llama-2 sizes and the papers' split sizes
    "pretrain": Stage(cpu_bytes=16, minutes=120, floor=60),  # fp32 weights + grads + two Adam moments
    "snapshot": Stage(cpu_bytes=0, minutes=4, floor=30),  # a hub download (~2 GB/min) and hashing, no model load
    "probe": Stage(cpu_bytes=6, minutes=1, floor=15),  # one scoring pass over a split
    "importance": Stage(cpu_bytes=8, minutes=1, floor=20),  # forward + backward to activations, per task
    "extract": Stage(cpu_bytes=12, minutes=2, floor=30, gpu_host_bytes=6),  # + fp32 |W*g| sums, on the host
                                                                             # for a 13B teacher (seeking.extract)
    "targets": Stage(cpu_bytes=6, minutes=1.5, floor=30),  # teacher + student over a train split, per task
    "train": Stage(cpu_bytes=8, minutes=30, floor=60),  # LoRA: frozen weights + activations, per adapter
    # LaTen: per translator step, neuron attribution re-run on teacher and student, then a hypernetwork update
    # through the student on a 16-example mini-batch; units are steps (laten.steps per task) x seeds
    "laten": Stage(cpu_bytes=8, minutes=1, floor=20),
    "evaluate": Stage(cpu_bytes=6, minutes=3, floor=30),  # lm-eval (generation dominates), per task and seed
    "analysis": Stage(cpu_bytes=6, minutes=2, floor=20),  # CKA and bases on a few items
    "ablation": Stage(cpu_bytes=8, minutes=33, floor=60),  # train + evaluate, per variant and seed
    "transfer_probe": Stage(cpu_bytes=8, minutes=10, floor=60),  # train + evaluate on short prompts, per row and seed
}


def parameter_count(arch: dict[str, Any], vocab_size: int) -> int:
    """Parameters of a Llama of this architecture: untied embeddings and LM head, MHA/GQA, SwiGLU.

    ``arch`` is a ``models.<name>`` config section (hidden_size, num_layers, num_heads,
    intermediate_size, and num_key_value_heads where the model has fewer key/value heads; a hub model's
    own vocab_size and tie_word_embeddings win over the arguments). Exact for the toy models of
    :mod:`pkt.models.build`; Llama-2-7B's sizes give 6.74e9.
    """
    h, layers, inter = arch["hidden_size"], arch["num_layers"], arch["intermediate_size"]
    heads, vocab_size = arch["num_heads"], arch.get("vocab_size", vocab_size)
    kv = arch.get("num_key_value_heads", heads)
    kv_width = h // heads * kv
    attention = 2 * h * h + 2 * h * kv_width  # q, o; k, v
    mlp = 3 * h * inter  # gate, up, down
    per_layer = attention + mlp + 2 * h  # two RMSNorm weights
    heads_and_embeddings = (1 if arch.get("tie_word_embeddings") else 2) * vocab_size * h
    return heads_and_embeddings + layers * per_layer + h  # embeddings (+ LM head), layers, final norm


def job_resources(stage: str, parameters: list[int], units: int = 1, gpu: bool = False) -> dict[str, int]:
    """``{mem_mb, runtime, gpu}`` of one job of ``stage`` that loads models of ``parameters`` each.

    ``units`` is how many times the job does the stage's work (e.g. tasks x seeds for ``train``);
    ``gpu`` whether the job runs its models on a GPU (one: the library uses a single device).
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {sorted(STAGES)}")
    if units < 1 or not parameters:
        raise ValueError(f"{stage}: a job needs at least one model and one unit of work")
    cost, total = STAGES[stage], sum(parameters)
    host_bytes = cost.gpu_host_bytes * max(parameters) if gpu else cost.cpu_bytes * total
    mem_mb = PROCESS_MB + math.ceil(host_bytes / 2**20 / ROUND_MB) * ROUND_MB
    runtime = max(cost.floor, math.ceil(cost.minutes * total / 1e9 * units))
    return {"mem_mb": mem_mb, "runtime": runtime, "gpu": int(gpu)}
