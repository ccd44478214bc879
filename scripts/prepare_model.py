"""Rule prepare_model: pretrain a toy Llama from scratch on its corpus, or snapshot a hub model (pkt.models.hub)."""

from pkt.runtime import announce_restart, job_logging, resolve_device, set_offline, setup_torch

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        cfg, name = snakemake.params.model, snakemake.wildcards.model
        if "hub" in cfg:  # the user's hub settings and token: the one job of a paper run that downloads weights
            from pkt.models.hub import prepare_hub_model

            prepare_hub_model(name, cfg, snakemake.output[0])
        else:
            from pkt.models.build import pretrain

            announce_restart("pretrain")
            set_offline()
            setup_torch(snakemake.threads, cfg["pretrain"]["seed"])
            pretrain(corpus_path=snakemake.input.corpus, tokenizer_dir=snakemake.input.tokenizer,
                     out_dir=snakemake.output[0], arch=cfg, train=cfg["pretrain"],
                     device=resolve_device(snakemake.params.device), name=name)
