"""Rule evaluate: one lm-eval task on one model (+ adapter); writes exactly the declared outputs."""

from pathlib import Path

from lm_eval.utils import handle_non_serializable

from pkt import tasks
from pkt.evaluate import config_hash, run_task
from pkt.io import sha256_dir, write_json, write_jsonl
from pkt.runtime import job_logging, resolve_device, set_offline, setup_torch


def model_provenance(path: str, name: str) -> dict:
    """A model is identified by the sha256 of its directory's files (cheap for toy models)."""
    return {"name": name, "path": path, "sha256": sha256_dir(path)}


if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        set_offline()
        setup_torch(snakemake.threads, int(snakemake.wildcards.seed))
        tasks.set_code_workers(snakemake.threads)
        ev, wc = snakemake.params.evaluation, snakemake.wildcards
        adapter = snakemake.input.get("adapter")
        summary, samples = run_task(
            model_dir=snakemake.input.model,
            task=wc.task,
            tasks_dir=Path(snakemake.input.task).parent,
            data=snakemake.params.data,
            adapter_dir=adapter,
            batch_size=ev["batch_size"],
            device=resolve_device(snakemake.params.device),
            max_length=snakemake.params.max_length,
            apply_chat_template=ev["apply_chat_template"],
            limit=ev["limit"],
            seed=int(wc.seed),
        )
        result = {
            **summary,
            "method": wc.method,
            "pair": wc.pair,
            "model": model_provenance(snakemake.input.model, snakemake.params.model_name),
            "adapter": {"path": adapter, "sha256": sha256_dir(adapter)} if adapter else None,
            "config_hash": config_hash(
                {"evaluation": ev, "data": snakemake.params.data, "model": snakemake.params.model}
            ),
            "samples": Path(snakemake.output.samples).name,
        }
        write_jsonl(snakemake.output.samples, samples, default=handle_non_serializable)
        write_json(snakemake.output.result, result)
