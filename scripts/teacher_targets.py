"""Rule teacher_targets: the teacher's paired-layer signals on each train split, mapped into the student's space."""

from pkt.io import atomic_dir, read_json
from pkt.methods.semalign.targets import TargetSettings, student_map, trained_pairs, write_task_targets
from pkt.models.build import load_model
from pkt.runtime import announce_restart, job_logging, resolve_device, set_offline, setup_torch

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        announce_restart("targets")
        set_offline()
        setup_torch(snakemake.threads, seed=0)
        params, inp = snakemake.params, snakemake.input
        settings = TargetSettings(**params.targets)
        teacher, tokenizer = load_model(inp.teacher, resolve_device(params.device))
        matrix, vocab = student_map(teacher, inp.student, params.models, params.shared_vocab_only)
        meta = {"pair": snakemake.wildcards.pair, "teacher": params.models[0], "student": params.models[1],
                "vocab": vocab,
                "definition": "target = M (h_T / ||h_T||), M = S_S S_T^T, S = unit-column pinv(lm_head) "
                              "(SemAlign Eqs. 1-2); h_T = the teacher layer's signal at each response token"}
        for task, split, align, pairing_file, out in zip(params.tasks, inp.splits, inp.align, inp.pairings,
                                                         snakemake.output):
            pairs = trained_pairs(read_json(pairing_file), settings.pairs, settings.interpolate)
            with atomic_dir(out) as tmp:
                write_task_targets(tmp, teacher, tokenizer, {"train": split, "align": align}, pairs, matrix,
                                   settings, params.batch_size, params.max_length, {**meta, "task": task},
                                   vocab=vocab)
