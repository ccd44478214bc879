"""Rule analyze_semalign: layer CKA teacher x student before/after SemAlign, and the semantic-bases check."""

from peft import PeftModel

from pkt.data.records import load_split, supervised_batches
from pkt.io import write_json
from pkt.methods.semalign.analysis import (
    bases_check,
    cka_matrix,
    layer_outputs,
    model_label,
    plot_bases,
    plot_cka,
    summary,
    token_sample,
)
from pkt.models.build import load_model
from pkt.runtime import job_logging, resolve_device, set_offline, setup_torch

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        set_offline()
        setup_torch(snakemake.threads, seed=0)
        params, inp, out = snakemake.params, snakemake.input, snakemake.output
        device = resolve_device(params.device)  # the run's device and dtype: a 13B teacher in bf16 on the GPU
        teacher, _ = load_model(inp.teacher, device)
        student, tokenizer = load_model(inp.student, device)  # the student's ids and pad: valid in both models
        records = load_split(inp.split)[: params.n_items]
        batches, _ = supervised_batches(records, tokenizer, 16, params.max_length)
        keep = token_sample(batches, params.n_tokens, seed=0)  # the same tokens for every model
        teacher_h, student_h = layer_outputs(teacher, batches, keep), layer_outputs(student, batches, keep)
        checks = {model_label(role, name): bases_check(hidden, model.get_output_embeddings().weight.detach(),
                                                       model.get_input_embeddings().weight.detach())
                  for role, name, model, hidden in (("teacher", params.models[0], teacher, teacher_h),
                                                    ("student", params.models[1], student, student_h))}
        before = cka_matrix(teacher_h, student_h)
        aligned = PeftModel.from_pretrained(student, inp.adapter).eval()
        after = cka_matrix(teacher_h, layer_outputs(aligned, batches, keep))
        title = f"{snakemake.wildcards.pair}, {params.task} test inputs ({len(records)} items), SemAlign seed 0"
        plot_cka(before, after, out.cka, f"Linear CKA of layer outputs: {title}")
        plot_bases(checks, out.bases, f"Decompose-recompose through unit bases, cosine and logit rules: {title}")
        write_json(out.record, {**summary(before, after, checks), "task": params.task, "n_items": len(records),
                                "n_tokens": len(teacher_h[0]),
                                "adapter": inp.adapter, "pair": snakemake.wildcards.pair})
