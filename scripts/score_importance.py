"""Rule score_importance: per-layer gradient x activation of one model on every task's extract split."""

from pkt.data.records import load_split, supervised_batches
from pkt.io import write_json
from pkt.layers.importance import layer_importance
from pkt.models.build import load_model
from pkt.runtime import job_logging, resolve_device, set_offline, setup_torch

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        set_offline()
        setup_torch(snakemake.threads, seed=0)
        cfg = snakemake.params.importance
        model, tokenizer = load_model(snakemake.input.model, resolve_device(snakemake.params.device))
        for task, split, out in zip(snakemake.params.tasks, snakemake.input.splits, snakemake.output):
            records = load_split(split)
            batches, length_rule = supervised_batches(records, tokenizer, cfg["batch_size"],
                                                      snakemake.params.max_length)
            scores = layer_importance(model, batches, aggregation=cfg["aggregation"], target=cfg["target"])
            write_json(out, {
                "model": snakemake.wildcards.model, "task": task, "split": "extract",
                "n_examples": len(records), "aggregation": cfg["aggregation"], "target": cfg["target"],
                "definition": "A_l * dL/dA_l over the extract split (A_l = decoder layer l's "
                              + ("output" if cfg["target"] == "output" else "residual contribution h_l - h_{l-1}")
                              + "; L = the causal-LM loss averaged over every response token of the split, "
                              "whatever the batching), reduced by the aggregation",
                "length_rule": length_rule, "layer_index_base": 1,
                "scores": scores,  # scores[i] is decoder layer i + 1 (1-indexed, as in the papers)
            })
