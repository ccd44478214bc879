# Cross-scale knowledge transfer between language models (Seeking, SemAlign), as one DAG.
#
# Every output lives under results/<run_name>/<stage>/..., one folder per stage:
#   data/<task>/<split>.jsonl   prepare_data       toy world: task splits + pretraining corpora
#   tokenizer/                  prepare_tokenizer  the byte-level BPE shared by teacher and student
#   models/<model>/             prepare_model      tiny Llama pretrained from scratch
#   probe/<model>.json          probe              held-out fact accuracy by option log-likelihood
# Logs mirror those paths under logs/<run_name>/. Config: config/config.yaml (toy scale, default).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/probe.smk"


rule all:
    default_target: True
    input:
        rules.probes.input,


rule data:
    input:
        rules.prepare_data.output,


rule models:
    input:
        model_dirs(),
