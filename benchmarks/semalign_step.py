"""SemAlign's costs, side by side in one run, on a toy-sized teacher (96 x 4) and student (64 x 2), vocab 1500.

1. A SemAlign training step (v1: hooks on the paired layer, stored targets gathered by example, the two
   cosine terms) against a plain LoRA step (cross-entropy) with the same adapter on the same batch.
2. Reading a batch's stored targets (memory-mapped .npy) against computing them on the fly (a teacher
   forward pass at the paired layer and the mapping).
3. The precomputed map M = S_S S_T^T against the two-step mapping a = S_T^T h / ||h||, S_S a.

Each line is the median of repeated timings after warm-up, alternating the two sides, at 1 thread.

    python benchmarks/semalign_step.py [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pkt.layers.pairing import pair_layers
from pkt.methods import get_method
from pkt.methods.semalign.bases import MAPS, map_matrix, map_teacher, map_two_step, mapping_matrix, semantic_bases
from pkt.methods.semalign.store import write_targets
from pkt.methods.semalign.targets import compute_targets, layer_signals, trained_pairs

VOCAB, BATCH, PROMPT, LENGTH = 1500, 8, 24, 72


def llama(d: int, layers: int, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=d, intermediate_size=256, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).eval()


def make_batch() -> dict[str, torch.Tensor]:
    ids = torch.randint(0, VOCAB, (BATCH, LENGTH), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :PROMPT] = -100
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def timed(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed repetitions of each side")
    args = parser.parse_args()
    torch.set_num_threads(1)
    teacher, batch = llama(96, 4, 0), make_batch()
    pairing = pair_layers([3.0, 1.0, 1.0, 1.0], [1.0, 1.0])
    pairs = trained_pairs(pairing, "critical", True)
    s_t, s_s = semantic_bases(teacher.lm_head.weight.double()), semantic_bases(llama(64, 2, 1).lm_head.weight.double())
    matrix = mapping_matrix(s_s, s_t)
    student_head = llama(64, 2, 1).lm_head.weight
    maps = {kind: map_matrix(kind, student_head, teacher.lm_head.weight) for kind in MAPS}
    with tempfile.TemporaryDirectory() as tmp:
        write_targets(tmp, compute_targets(teacher, [batch], pairs, "delta", 32), {"pairs": pairs, "signal": "delta"},
                      maps=maps)
        settings = {"r": 8, "alpha": 16, "dropout": 0.0}
        semalign = get_method("semalign").from_dict(settings, {"targets": Path(tmp)})
        sem_model = semalign.init_adapter(llama(64, 2, 1), None).train()
        same_place = {"target_modules": ["v_proj", "o_proj", "up_proj", "down_proj"], "layers": semalign.layers}
        plain = get_method("lora").from_dict({**settings, **same_place})
        lora_model = plain.init_adapter(llama(64, 2, 1), None).train()
        index = torch.arange(BATCH)
        opt_s = torch.optim.AdamW([p for p in sem_model.parameters() if p.requires_grad], lr=1e-4)
        opt_l = torch.optim.AdamW([p for p in lora_model.parameters() if p.requires_grad], lr=1e-4)

        def sem_step():
            out = sem_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            loss = semalign.aux_loss(sem_model, {**batch, "example_index": index}, out)
            opt_s.zero_grad()
            loss.backward()
            opt_s.step()

        def lora_step():
            loss = lora_model(**batch).loss
            opt_l.zero_grad()
            loss.backward()
            opt_l.step()

        for fn in (sem_step, lora_step):
            timed(fn, 3)  # warm-up
        sem_s = statistics.median(timed(sem_step, 1) for _ in range(args.steps))
        lora_s = statistics.median(timed(lora_step, 1) for _ in range(args.steps))
        print(f"1. training step, batch {BATCH} x {LENGTH} tokens ({LENGTH - PROMPT} supervised), LoRA r 8 on the"
              " paired layer's v/o/up/down")
        print(f"   plain LoRA (cross-entropy):         {lora_s * 1e3:8.2f} ms")
        print(f"   SemAlign v1 (stored targets, hooks): {sem_s * 1e3:8.2f} ms   ratio {sem_s / lora_s:.2f}x")

        targets = semalign.targets()
        counts = [LENGTH - PROMPT] * BATCH
        layer = pairs[0]["sources"][0][0] - 1

        def read():  # the rows, mapped as training maps them (semalign.map), and the top-k
            semalign.mapped(targets.layers[0], list(range(BATCH)), counts, "cpu")
            targets.topk(list(range(BATCH)), counts)

        @torch.no_grad()
        def on_the_fly():
            signals, out = layer_signals(teacher, batch, [layer], "delta")
            map_teacher(signals[layer][batch["labels"] != -100], maps["logit"], unit=False)
            out.logits.topk(32, dim=-1)

        read_s, fly_s = timed(read, args.steps), timed(on_the_fly, args.steps)
        print("2. one batch's targets")
        print(f"   read from disk (memory-mapped):       {read_s * 1e3:8.3f} ms")
        print(f"   teacher forward + mapping on the fly: {fly_s * 1e3:8.3f} ms   ratio {fly_s / read_s:.0f}x")

    h = torch.randn(BATCH * (LENGTH - PROMPT), 96)
    one_s, two_s = timed(lambda: map_teacher(h, matrix), args.steps), timed(lambda: map_two_step(h, s_t, s_s),
                                                                         args.steps)
    print(f"3. mapping {h.shape[0]} teacher vectors (D_T 96 -> D_S 64 through V = {VOCAB} bases)")
    print(f"   two-step (S_S (S_T^T h / ||h||)):    {two_s * 1e3:8.3f} ms")
    print(f"   precomputed M = S_S S_T^T:           {one_s * 1e3:8.3f} ms   ratio {two_s / one_s:.0f}x")


if __name__ == "__main__":
    main()
