"""Rule evaluate: every lm-eval task on one model, for every seed's task adapters, with one model load
(or, with evaluation.backend: vllm, one vLLM engine per adapter: pkt.evaluation.vllm_backend)."""

import tempfile
from pathlib import Path

from lm_eval.utils import handle_non_serializable

from pkt.data.manifest import data_identity
from pkt.evaluation import tasks
from pkt.evaluation.evaluate import config_hash, load_lm, run_task, task_options, use_adapter
from pkt.io import sha256_dir, write_json, write_jsonl
from pkt.models.hub import model_identity
from pkt.runtime import announce_restart, cpu_provenance, job_logging, resolve_device, set_offline, setup_torch


def adapter_name(task: str, seed: int) -> str:
    return f"{task}-seed{seed}"


if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        announce_restart("evaluate")
        params, wc, out = snakemake.params, snakemake.wildcards, snakemake.output
        if all(data and data.get("data_files") for data in params.data.values()):
            set_offline()  # every test set is a local file; else lm-eval reads the hub with the user's settings
        setup_torch(snakemake.threads)
        tasks.set_code_workers(snakemake.threads)
        tasks.set_verdict_store(params.verdicts)  # one sandbox run per distinct program per run (verdicts)
        for data in params.data.values():  # a split cut or changed since prepare_data: refused before the model loads
            for path in (data or {}).get("data_files", {}).values():
                data_identity(path)
        ev = params.evaluation
        adapters = {adapter_name(task, seed): path for seed, by_task in params.adapters.items()
                    for task, path in by_task.items()}
        if ev["backend"] == "vllm":
            from pkt.evaluation.vllm_backend import VLLMModels

            served = VLLMModels(snakemake.input.model, adapters, ev["batch_size"], params.max_length,
                                tempfile.mkdtemp(prefix="pkt-vllm-"), dtype=ev["dtype"])
            serve = served.lm
        else:
            lm = load_lm(snakemake.input.model, adapters or None, batch_size=ev["batch_size"],
                         device=resolve_device(params.device), max_length=params.max_length,
                         merge=ev["merge_adapters"], dtype=ev["dtype"])

            def serve(name):
                if name:
                    use_adapter(lm, name)
                return lm
        # A model is named by the identity prepare_model computed once (pkt.models.hub): no 26 GB hashed per job.
        model = {"name": params.model_name, "path": snakemake.input.model, **model_identity(snakemake.input.model)}
        runs = [(seed, task) for seed in params.seeds for task in params.tasks]  # the order of the outputs
        for (seed, task), result_path, samples_path in zip(runs, out.results, out.samples):
            setup_torch(snakemake.threads, int(seed))
            trained_on = params.train_of[task]  # the task whose adapter serves this one (itself by default)
            adapter = params.adapters[seed][trained_on] if adapters else None
            model_lm = serve(adapter_name(trained_on, seed) if adapter else None)
            summary, samples = run_task(model_lm, task, Path(snakemake.input.tasks[0]).parent, data=params.data[task],
                                        seed=int(seed), **task_options(ev))
            result = {
                **summary,
                "method": wc.method,
                "pair": wc.pair,
                "model": model,
                "adapter": {"path": adapter, "sha256": sha256_dir(adapter)} if adapter else None,
                "config_hash": config_hash({"evaluation": ev, "data": params.data[task], "model": params.model,
                                           "scored": summary["data"]}),  # the bytes scored, not only the path
                "cpu": cpu_provenance() if resolve_device(params.device) == "cpu" else None,  # its CPU code path
                "samples": Path(samples_path).name,
            }
            write_jsonl(samples_path, samples, default=handle_non_serializable)
            write_json(result_path, result)
