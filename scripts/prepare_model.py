"""Rule prepare_model: pretrain one tiny Llama from scratch on its corpus (toy scale)."""

from pkt.models import pretrain
from pkt.runtime import announce_restart, job_logging, resolve_device, set_offline, setup_torch

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        announce_restart("pretrain")
        set_offline()
        cfg = snakemake.params.model
        setup_torch(snakemake.threads, cfg["pretrain"]["seed"])
        pretrain(
            corpus_path=snakemake.input.corpus,
            tokenizer_dir=snakemake.input.tokenizer,
            out_dir=snakemake.output[0],
            arch=cfg,
            train=cfg["pretrain"],
            device=resolve_device(snakemake.params.device),
            name=snakemake.wildcards.model,
        )
