"""Rule train: one method's adapter for every seed and task, for one pair (pkt.train, any method)."""

from pkt.runtime import announce_restart, job_logging, resolve_device, set_offline, setup_torch
from pkt.train import train

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        announce_restart("train")
        set_offline()
        wc, params = snakemake.wildcards, snakemake.params
        for seed, adapters in params.adapters.items():
            for task, split in params.splits.items():
                setup_torch(snakemake.threads, int(seed))
                train(
                    method=wc.method,
                    method_settings=params.method_settings,
                    student_dir=snakemake.input.student,
                    train_split=split,
                    out_dir=adapters[task],
                    checkpoint_dir=params.checkpoints[seed][task],
                    settings=params.train[task],
                    seed=int(seed),
                    device=resolve_device(params.device),
                    inputs=params.method_inputs[task],
                )
