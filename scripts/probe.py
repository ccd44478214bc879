"""Rule probe: option log-likelihood accuracy of one model on held-out and control toy facts."""

from pkt.data.records import load_split
from pkt.io import write_json
from pkt.models.build import load_model
from pkt.probe import probe
from pkt.runtime import job_logging, resolve_device, set_offline, setup_torch

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        set_offline()
        setup_torch(snakemake.threads)
        device = resolve_device(snakemake.params.device)
        model, tokenizer = load_model(snakemake.input.model, device)
        result = probe(model, tokenizer, load_split(snakemake.input.facts), snakemake.params.batch_size, device)
        write_json(snakemake.output[0], {"model": snakemake.wildcards.model, **result})
