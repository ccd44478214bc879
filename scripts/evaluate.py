"""Rule evaluate: every lm-eval task on one model (+ each task's adapter), loaded once."""

from pathlib import Path

from lm_eval.utils import handle_non_serializable

from pkt import tasks
from pkt.evaluate import config_hash, load_lm, run_task, use_adapter
from pkt.io import sha256_dir, write_json, write_jsonl
from pkt.runtime import job_logging, resolve_device, set_offline, setup_torch

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        set_offline()
        seed, params, wc = int(snakemake.wildcards.seed), snakemake.params, snakemake.wildcards
        setup_torch(snakemake.threads, seed)
        tasks.set_code_workers(snakemake.threads)
        ev = params.evaluation
        adapters = dict(zip(params.tasks, snakemake.input.get("adapters", []))) or None
        lm = load_lm(snakemake.input.model, adapters, batch_size=ev["batch_size"],
                     device=resolve_device(params.device), max_length=params.max_length)
        # A model is identified by the sha256 of its directory's files (cheap for toy models).
        model = {"name": params.model_name, "path": snakemake.input.model, "sha256": sha256_dir(snakemake.input.model)}
        for task, result_path, samples_path in zip(params.tasks, snakemake.output.results, snakemake.output.samples):
            if adapters:
                use_adapter(lm, task)
            summary, samples = run_task(lm, task, Path(snakemake.input.tasks[0]).parent, data=params.data[task],
                                        apply_chat_template=ev["apply_chat_template"], limit=ev["limit"], seed=seed)
            adapter = adapters[task] if adapters else None
            result = {
                **summary,
                "method": wc.method,
                "pair": wc.pair,
                "model": model,
                "adapter": {"path": adapter, "sha256": sha256_dir(adapter)} if adapter else None,
                "config_hash": config_hash({"evaluation": ev, "data": params.data[task], "model": params.model}),
                "samples": Path(samples_path).name,
            }
            write_jsonl(samples_path, samples, default=handle_non_serializable)
            write_json(result_path, result)
