"""One CPU code path on every x86-64 machine (pkt.runtime.CPU_PINS): set, inherited, recorded, reproducible."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from pkt.runtime import CPU_PINS, pin_cpu

x86 = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the pins name x86 instruction sets")

# A tiny Llama trained 30 steps from a fixed seed, in a fresh process (the pins act when torch loads): the hash
# of its weights, the instruction set ATen ran with, and the provenance a result would record.
TRAIN = """
import hashlib, json, torch
from transformers import LlamaConfig, LlamaForCausalLM
from pkt.runtime import cpu_provenance
torch.manual_seed(0)
torch.set_num_threads(1)
model = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     num_attention_heads=4, max_position_embeddings=64))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
ids = torch.randint(0, 128, (8, 32), generator=torch.Generator().manual_seed(1))
for _ in range(30):
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step(); opt.zero_grad()
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
print(json.dumps({"digest": digest, "cpu": cpu_provenance()}))
"""


def run(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", TRAIN], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pin_cpu_sets_and_removes_the_three_switches():
    env = {"ATEN_CPU_CAPABILITY": "avx512", "OTHER": "1"}
    assert pin_cpu(True, env) == CPU_PINS and env["ATEN_CPU_CAPABILITY"] == "avx2" and env["OTHER"] == "1"
    assert pin_cpu(False, env) == {} and env == {"OTHER": "1"}
    assert os.environ["MKL_CBWR"] == "AVX2,STRICT"  # tests/conftest.py pinned this process before torch loaded


@x86
def test_a_pinned_run_equals_a_pinned_rerun_and_records_its_code_path():
    env = {**os.environ}
    pin_cpu(True, env)
    first, second = run(env), run(env)
    assert first == second  # the same weights, bit for bit, and the same provenance
    assert first["cpu"]["capability"] == "AVX2" and first["cpu"]["pins"] == CPU_PINS
    unpinned = {k: v for k, v in os.environ.items() if k not in CPU_PINS}
    assert run(unpinned)["cpu"]["pins"] == {}  # what an unpinned result says (its weights may differ)

