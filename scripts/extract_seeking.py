"""Rule extract_seeking: Seeking's sensitivity-based extraction of teacher weights as LoRA factors, per task, and
the factors of its ablation rows (seeking.ablation: one switch changed), cut from the same sensitivity."""

import dataclasses
import resource
import time

import torch

from pkt.data.records import load_split
from pkt.io import atomic_path, write_json
from pkt.methods.seeking.extract import (
    ExtractSettings,
    extract,
    save_factors,
    seed_examples,
    sensitivity,
    student_shapes,
)
from pkt.methods.seeking.plot import plot_sensitivity
from pkt.models.build import load_model
from pkt.runtime import announce_restart, job_logging, resolve_device, set_offline, setup_torch


def peak_memory_mb(device: str) -> tuple[float, str]:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20, "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process max RSS"


def cut(settings: ExtractSettings, factors_path: str, context: dict) -> dict:
    """Cut one setting's factors from the task's sensitivity and write them; their record."""
    factors, record = extract(context["weights"], context["sens"], context["shapes"], context["n_teacher"],
                              context["n_student"], context["rank"], settings)
    record.update(context["record"], settings=dataclasses.asdict(settings), layer_choice=settings.layers)
    with atomic_path(factors_path) as tmp:
        save_factors(tmp, factors)
    return record


if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        announce_restart("extract")
        set_offline()
        setup_torch(snakemake.threads, seed=0)
        params, out, pair = snakemake.params, snakemake.output, snakemake.wildcards.pair
        settings = ExtractSettings(**{**params.seeking, "modules": tuple(params.seeking["modules"])})
        device = resolve_device(params.device)
        teacher, tokenizer = load_model(snakemake.input.teacher, device,
                                        "bfloat16" if device.startswith("cuda") else "float32")
        shapes, n_student = student_shapes(snakemake.input.student)
        n_teacher = teacher.config.num_hidden_layers
        for i, (task, split) in enumerate(zip(params.tasks, snakemake.input.splits)):
            start = time.perf_counter()
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            examples, length_rule = seed_examples(load_split(split), tokenizer, settings.k, params.max_length)
            sens, k = sensitivity(teacher, examples)
            weights = {n: p.detach() for n, p in teacher.named_parameters()}  # blocks go to fp32 one by one
            context = {"weights": weights, "sens": sens, "shapes": shapes, "n_teacher": n_teacher,
                       "n_student": n_student, "rank": params.rank,
                       "record": {"pair": pair, "task": task, "teacher": params.models[0],
                                  "student": params.models[1], "k": k, "length_rule": length_rule, "device": device,
                                  "definition": "S(W) = sum over k seed examples of |W * dL_j/dW| (L_j: token-mean "
                                                "loss on example j's response tokens); layer score = sum over its "
                                                "parameters"}}
            record = cut(settings, out.factors[i], context)
            memory, memory_kind = peak_memory_mb(device)
            record.update(wall_s=round(time.perf_counter() - start, 2), peak_memory_mb=round(memory, 1),
                          peak_memory_kind=memory_kind)
            write_json(out.records[i], record)
            plot_sensitivity(record, out.figures[i], f"{pair} on {task}: {params.models[0]} sensitivity")
            if task in params.ablation_tasks:  # outputs: row-major over (ablation row, task)
                for j, (row, change) in enumerate(params.ablation.items()):
                    change = {key: tuple(v) if isinstance(v, list) else v for key, v in change.items()}
                    at = j * len(params.ablation_tasks) + params.ablation_tasks.index(task)
                    write_json(out.ablation_records[at], cut(dataclasses.replace(settings, **change),
                                                             out.ablation_factors[at],
                                                             {**context, "record": {**context["record"], "row": row}}))
            del sens, weights
