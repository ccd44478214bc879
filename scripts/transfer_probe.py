"""Rule transfer_probe: every teacher-signal channel trained on the probe split and scored on the held-out facts.

Library: pkt.transfer_probe (the split, the rows and their settings).
"""

from pkt.data.records import load_split, write_split
from pkt.io import read_json
from pkt.runtime import job_logging, resolve_device, set_offline, setup_torch
from pkt.transfer_probe import probe_records, run_probe

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        params, inp, out = snakemake.params, snakemake.input, snakemake.output
        set_offline()
        setup_torch(snakemake.threads, seed=0)
        write_split(out.split, probe_records(load_split(inp.test)), prefix="transfer_probe")
        run_probe(inp.teacher, inp.student, out.split, read_json(inp.pairing), params.rows, params.targets,
                  params.train, params.evaluation, params.seeds, params.root, params.tasks_dir, params.data,
                  tuple(params.models), params.max_length, resolve_device(params.device), snakemake.threads,
                  meta={"pair": snakemake.wildcards.pair})
