"""Rule train: one method's adapter for every seed and task, for one pair (pkt.train, any method).

A job given more than one GPU (``resources: gpu``, set per rule in the SLURM profile) trains each adapter
under torchrun, one process per GPU; LaTen, which fits without the Trainer, always runs in one process.
"""

import tempfile

from pkt.runtime import announce_restart, job_logging, resolve_device, set_offline, setup_torch
from pkt.train import launch, train

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        announce_restart("train")
        set_offline()
        wc, params = snakemake.wildcards, snakemake.params
        gpus = int(snakemake.resources.get("gpu", 0)) if wc.method != "laten" else 0
        for seed, adapters in params.adapters.items():
            for task, split in params.splits.items():
                setup_torch(snakemake.threads, int(seed))
                spec = dict(method=wc.method, method_settings=params.method_settings[task],
                            student_dir=snakemake.input.student, train_split=split, out_dir=adapters[task],
                            checkpoint_dir=params.checkpoints[seed][task], settings=params.train[task],
                            seed=int(seed), device=resolve_device(params.device), inputs=params.method_inputs[task],
                            logging_dir=f"{params.tensorboard}/{task}/seed{seed}")
                if gpus > 1:
                    launch(spec, gpus, tempfile.gettempdir())
                else:
                    train(**spec)
