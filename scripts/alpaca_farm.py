"""Rule alpaca_farm: each seed's LIMA adapter of one row generates AlpacaEval's 805 outputs, which alpaca_eval's
judge compares with text-davinci-003's; the win rate becomes an eval result (task alpaca_farm) for Seeking's tables."""

from pkt.evaluation.alpaca_farm import result_of, run
from pkt.evaluation.evaluate import load_lm, use_adapter
from pkt.io import sha256_dir, write_json
from pkt.models.hub import model_identity
from pkt.runtime import announce_restart, job_logging, resolve_device, setup_torch

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        announce_restart("alpaca_farm")
        params, wc, out = snakemake.params, snakemake.wildcards, snakemake.output
        setup_torch(snakemake.threads)
        ev = params.evaluation
        adapters = {f"seed{seed}": path for seed, path in zip(params.seeds, snakemake.input.adapters)}
        lm = load_lm(snakemake.input.model, adapters, batch_size=ev["batch_size"],
                     device=resolve_device(params.device), max_length=params.max_length,
                     merge=ev["merge_adapters"], dtype=ev["dtype"])
        model = {"name": params.model_name, "path": snakemake.input.model, **model_identity(snakemake.input.model)}
        for seed, result_path, out_dir in zip(params.seeds, out.results, out.outputs):
            setup_torch(snakemake.threads, int(seed))
            use_adapter(lm, f"seed{seed}")
            summary = run(lm, {"seeking_eval": {"alpaca_farm": {**params.settings, "enabled": True}}}, out_dir,
                          f"{wc.method}-{wc.pair}-seed{seed}")
            adapter = adapters[f"seed{seed}"]
            write_json(result_path, {**result_of(summary), "method": wc.method, "pair": wc.pair, "seed": int(seed),
                                     "model": model, "adapter": {"path": adapter, "sha256": sha256_dir(adapter)}})
