# Cross-scale knowledge transfer between language models (Seeking, SemAlign), as one DAG.
#
# Every output lives under results/<run_name>/<stage>/..., one folder per stage:
#   data/<task>/<split>.jsonl   prepare_data       toy world: task splits + pretraining corpora
#   tokenizer/                  prepare_tokenizer  the byte-level BPE shared by teacher and student
#   models/<model>/             prepare_model      tiny Llama pretrained from scratch
#   probe/<model>.json          probe              held-out fact accuracy by option log-likelihood
#   importance/<model>/<task>.json  score_importance  per-layer gradient x activation (extract split)
#   pairing/<pair>/<task>.{json,png} pair_layers    depth-aware teacher/student pairing + figure
#   extract/<pair>/<task>/      extract_seeking    Seeking's LoRA factors from the teacher + extract.json + figure
#   targets/<pair>/<task>/      teacher_targets    teacher signals + SemAlign's maps (memory-mapped .npy + index)
#   eval/<method>/<pair>/<task>/seed<k>.json  evaluate  lm-eval result + provenance (+ .samples.jsonl)
#                               (method "vanilla": the pair slot names the model evaluated)
#   adapters/<method>/<pair>/<task>/seed<k>/  train   LoRA adapter + training.json (loss curve)
#   analysis/<pair>/{cka,bases}.png  analyze_semalign  SemAlign's layer CKA before/after and the bases check
#   ablation/<pair>/<variant>/seed<k>.json  semalign_ablation  SemAlign variants on one task (eval format)
#   transfer_probe/<pair>/<row>/seed<k>.json  transfer_probe  each teacher signal on the held-out facts (toy)
#   tables/main.{csv,md,tex}, metrics.json    tables  the papers' Table 1 layout
#   figures/*.png               figures            per-benchmark bars, training curves
# Logs mirror those paths under logs/<run_name>/. Config: config/config.yaml (toy scale, default).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/importance.smk"
include: "workflow/rules/pairing.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/transfer_probe.smk"
include: "workflow/rules/seeking.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.probes.input if TOY else [],  # the probe asks the toy world's facts
        rules.pairings.input,
        rules.evaluations.input,
        rules.tables.output,
        rules.figures.output,
        rules.analyses.input,
        rules.ablation_table.output if "semalign" in config["methods"] else [],
        rules.transfer_table.output if TOY and PROBE["in_default_run"] else [],
        rules.seeking_tables.output if SEEKING_TABLES else [],


rule data:
    input:
        rules.prepare_data.output,


rule models:
    input:
        model_dirs(),


rule importance:
    input:
        rules.pairings.input,


rule adapters:
    input:
        adapter_targets(),
