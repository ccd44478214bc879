"""Rule teacher_targets: the teacher's paired-layer signals on each train split, and the maps into the student's space.

The splits are tokenised first and the targets' size computed; a pair above ``semalign.targets_max_gb`` is
refused before the teacher is loaded. Rows are then streamed to disk batch by batch.
"""

import logging

from pkt.io import atomic_dir, read_json
from pkt.methods.semalign.targets import (
    TargetSettings,
    check_disk,
    plan_targets,
    student_maps,
    trained_pairs,
    write_task_targets,
)
from pkt.models.build import load_model, load_tokenizer, saved_config
from pkt.runtime import announce_restart, job_logging, resolve_device, set_offline, setup_torch

log = logging.getLogger("teacher_targets")

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        announce_restart("targets")
        set_offline()
        setup_torch(snakemake.threads, seed=0)
        params, inp = snakemake.params, snakemake.input
        settings = TargetSettings(**params.targets)
        tokenizer = load_tokenizer(inp.student)  # training's ids; a teacher's extra token (a [PAD]) never enters
        teacher_cfg, student_cfg = saved_config(inp.teacher), saved_config(inp.student)
        tasks = list(zip(params.tasks, inp.splits, inp.align, inp.pairings, snakemake.output))
        plans = {task: plan_targets(tokenizer, {"train": split, "align": align}, params.batch_size, params.max_length)
                 for task, split, align, _, _ in tasks}
        pairs = {task: trained_pairs(read_json(pairing), settings.pairs, settings.interpolate)
                 for task, _, _, pairing, _ in tasks}
        topk = min(settings.topk, teacher_cfg["vocab_size"])
        rows, total = check_disk(snakemake.wildcards.pair, plans, pairs, student_cfg["hidden_size"],
                                 teacher_cfg["hidden_size"], topk, settings.targets_dtype, params.max_gb)
        log.info("targets of %s: %d response tokens, %.2f GB in %s (semalign.targets_max_gb %s)",
                 snakemake.wildcards.pair, rows, total / 1e9, settings.targets_dtype, params.max_gb)
        teacher, _ = load_model(inp.teacher, resolve_device(params.device))
        maps, vocab = student_maps(teacher, inp.student, params.models, params.shared_vocab_only)
        meta = {"pair": snakemake.wildcards.pair, "teacher": params.models[0], "student": params.models[1],
                "vocab": vocab,
                "definition": "teacher<k>.npy: the teacher layer's signal h_T at each position predicting a response "
                              "token; target = M h_T (logit: M = pinv(W_S) W_T) or M h_T / ||h_T|| (cosine: "
                              "M = S_S S_T^T, S = unit-column pinv(lm_head)), M in maps.safetensors"}
        for task, _, _, _, out in tasks:
            with atomic_dir(out) as tmp:
                write_task_targets(tmp, teacher, plans[task], pairs[task], maps, settings, {**meta, "task": task},
                                   vocab=vocab)
