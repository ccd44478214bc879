# Validation, wildcard constraints, paths and input functions. No rules here.

from pkt.config_checks import check_config
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml", set_default=True)
check_config(config)

RUN = f"results/{config['run_name']}"
LOGS = f"logs/{config['run_name']}"
TASKS = ["toy_mmlu", "toy_gsm8k", "toy_humaneval", "toy_mbpp"]
SPLITS = ["train", "extract", "align", "test"]
CORPORA = ["teacher", "student"]
MODELS = list(config["models"])


wildcard_constraints:
    model="|".join(MODELS),
    task="|".join(TASKS),
    split="|".join(SPLITS),


def model_dirs():
    """Every model directory of the run."""
    return expand(f"{RUN}/models/{{model}}", model=MODELS)


def corpus_of(wildcards):
    """The pretraining corpus named by models.<model>.corpus."""
    return f"{RUN}/data/corpus/{config['models'][wildcards.model]['corpus']}.jsonl"


def lib(*modules):
    """Library modules a rule runs, as inputs: editing one reruns the rule (scripts are tracked anyway)."""
    return [f"src/pkt/{m}.py" for m in modules]
