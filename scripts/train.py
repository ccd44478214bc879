"""Rule train: one adapter for one method, pair, task and seed (pkt.train, any registered method)."""

from pkt.runtime import job_logging, resolve_device, set_offline, setup_torch
from pkt.train import train

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        set_offline()
        wc = snakemake.wildcards
        setup_torch(snakemake.threads, int(wc.seed))
        method_inputs = {k: v for k, v in snakemake.input.items() if k not in ("student", "split", "code")}
        train(
            method=wc.method,
            method_settings=snakemake.params.method_settings,
            student_dir=snakemake.input.student,
            train_split=snakemake.input.split,
            out_dir=snakemake.output[0],
            checkpoint_dir=snakemake.params.checkpoints,
            settings=snakemake.params.train,
            seed=int(wc.seed),
            device=resolve_device(snakemake.params.device),
            inputs=method_inputs,
        )
