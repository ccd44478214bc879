"""Rule semalign_ablation: each SemAlign variant trained and evaluated on the ablation task.

Library: pkt.methods.semalign.ablation.
"""

import dataclasses
from pathlib import Path

from pkt.evaluation.evaluate import load_lm, run_task, task_options, use_adapter
from pkt.io import atomic_dir, read_json, write_json
from pkt.methods.semalign.ablation import result_path, variants
from pkt.methods.semalign.targets import (
    TARGET_FIELDS,
    TargetSettings,
    plan_targets,
    student_maps,
    trained_pairs,
    write_task_targets,
)
from pkt.models.build import load_model, load_tokenizer
from pkt.runtime import cpu_provenance, job_logging, resolve_device, set_offline, setup_torch
from pkt.train import train

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        params, inp, wc = snakemake.params, snakemake.input, snakemake.wildcards
        if params.data and params.data.get("data_files"):
            set_offline()  # the test set is a local file; else lm-eval reads the hub with the user's settings
        setup_torch(snakemake.threads, seed=0)
        root, device, sem = Path(params.root), resolve_device(params.device), params.semalign
        configured = TargetSettings(**{k: sem[k] for k in TARGET_FIELDS})
        teacher, tokenizer = None, None
        adapters = {}
        for slug, variant in variants(sem).items():
            if slug not in params.variants:  # a job per variant where one for all would outrun max_runtime
                continue
            targets_dir = Path(inp.targets)
            if variant["targets"]:  # another signal or interpolation: this variant's own teacher targets
                settings = dataclasses.replace(configured, **variant["targets"])
                if teacher is None:
                    teacher, _ = load_model(inp.teacher, device)
                    tokenizer = load_tokenizer(inp.student)  # training's ids (a teacher's extra [PAD] never enters)
                    maps, vocab = student_maps(teacher, inp.student, params.models, sem["shared_vocab_only"])
                pairs = trained_pairs(read_json(inp.pairing), settings.pairs, settings.interpolate)
                targets_dir = root / slug / "targets"
                with atomic_dir(targets_dir) as tmp:
                    plans = plan_targets(tokenizer, {"train": inp.split, "align": inp.align}, sem["batch_size"],
                                         params.max_length)
                    write_task_targets(tmp, teacher, plans, pairs, maps, settings, {"variant": slug}, vocab=vocab)
            for seed in params.seeds:
                setup_torch(snakemake.threads, seed)
                out = root / slug / f"adapter-seed{seed}"
                train(method="semalign", method_settings={**params.method_settings, **variant["method"]},
                      student_dir=inp.student, train_split=inp.split, out_dir=out,
                      checkpoint_dir=root / slug / f"checkpoints-seed{seed}", settings=params.train, seed=seed,
                      device=device, inputs={"targets": str(targets_dir), "align_split": inp.align})
                adapters[(slug, seed)] = out
        lm = load_lm(inp.student, {f"{slug}-seed{seed}": str(path) for (slug, seed), path in adapters.items()},
                     batch_size=params.evaluation["batch_size"], device=device, max_length=params.max_length,
                     dtype=params.evaluation["dtype"])
        for (slug, seed), path in adapters.items():
            setup_torch(snakemake.threads, seed)
            use_adapter(lm, f"{slug}-seed{seed}")
            summary, _ = run_task(lm, params.task, params.tasks_dir, data=params.data, seed=seed,
                                  **task_options(params.evaluation))
            write_json(result_path(root, slug, seed), {**summary, "method": slug, "pair": wc.pair,
                                                       "adapter": {"path": str(path)},
                                                       "cpu": cpu_provenance() if device == "cpu" else None})
