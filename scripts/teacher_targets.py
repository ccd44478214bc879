"""Rule teacher_targets: the teacher's paired-layer signals on each train split, mapped into the student's space."""

import time

from pkt.data import load_split, supervised_batches
from pkt.io import atomic_dir, read_json
from pkt.models import load_model, load_tensor
from pkt.runtime import job_logging, resolve_device, set_offline, setup_torch
from pkt.semalign import mapping_matrix, semantic_bases, shared_vocab_size
from pkt.targets import TargetSettings, compute_targets, trained_pairs, write_targets

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        set_offline()
        setup_torch(snakemake.threads, seed=0)
        params, inp = snakemake.params, snakemake.input
        settings = TargetSettings(**params.targets)
        teacher_name, student_name = params.models
        teacher, tokenizer = load_model(inp.teacher, resolve_device(params.device))
        head_t, head_s = teacher.get_output_embeddings().weight.detach(), load_tensor(inp.student, "lm_head.weight")
        m = shared_vocab_size(head_t.shape[0], head_s.shape[0], teacher_name, student_name, params.shared_vocab_only)
        matrix = mapping_matrix(semantic_bases(head_s[:m].double()), semantic_bases(head_t[:m].double()))
        for task, split, align, pairing_file, out in zip(params.tasks, inp.splits, inp.align, inp.pairings,
                                                         snakemake.output):
            pairs = trained_pairs(read_json(pairing_file), settings.pairs, settings.interpolate)
            with atomic_dir(out) as tmp:
                for records, folder in ((split, tmp), (align, tmp / "align")):  # train split, v1's align split
                    start = time.perf_counter()
                    folder.mkdir(exist_ok=True)
                    batches, length_rule = supervised_batches(load_split(records), tokenizer, params.batch_size,
                                                              params.max_length)
                    computed = compute_targets(teacher, batches, pairs, matrix, settings.signal, settings.topk)
                    write_targets(folder, computed, {
                        "pair": snakemake.wildcards.pair, "task": task, "split": str(records), "teacher": teacher_name,
                        "student": student_name, "pairs": pairs, "signal": settings.signal, "topk": settings.topk,
                        "vocab": m, "length_rule": length_rule, "wall_s": round(time.perf_counter() - start, 2),
                        "definition": "target = M (h_T / ||h_T||), M = S_S S_T^T, S = unit-column pinv(lm_head) "
                                      "(SemAlign Eqs. 1-2); h_T = the teacher layer's signal at each response token",
                    })
