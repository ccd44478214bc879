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
EVAL_TASKS = config["evaluation"]["tasks"]
METHODS = ["vanilla", *config["methods"]]
PAIRS = list(config["pairs"])
SEEDS = config["seeds"]


wildcard_constraints:
    model="|".join(MODELS),
    task="|".join(TASKS + EVAL_TASKS),
    split="|".join(SPLITS),
    method="|".join(METHODS),
    pair="|".join([*config["pairs"], *MODELS]),
    seed=r"\d+",


def model_dirs():
    """Every model directory of the run."""
    return expand(f"{RUN}/models/{{model}}", model=MODELS)


def corpus_of(wildcards):
    """The pretraining corpus named by models.<model>.corpus."""
    return f"{RUN}/data/corpus/{config['models'][wildcards.model]['corpus']}.jsonl"


def lib(*modules):
    """Library modules a job imports, declared as inputs so that editing one reruns its jobs."""
    return [f"src/pkt/{m}.py" for m in modules]


def eval_targets():
    """Vanilla teacher and student of every pair (seed 0), and every method x pair x seed, on every task."""
    models = sorted({p[role] for p in config["pairs"].values() for role in ("teacher", "student")})
    vanilla = expand(f"{RUN}/eval/vanilla/{{model}}/{{task}}/seed0.json", model=models, task=EVAL_TASKS)
    methods = expand(
        f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.json",
        method=config["methods"],
        pair=PAIRS,
        task=EVAL_TASKS,
        seed=SEEDS,
    )
    return vanilla + methods


def adapter_dir(wildcards):
    return f"{RUN}/adapters/{wildcards.method}/{wildcards.pair}/{wildcards.task}/seed{wildcards.seed}"


def checkpoint_dir(wildcards):
    """Trainer checkpoints live outside the output, so a killed job's progress survives for resume."""
    return f"{RUN}/checkpoints/{wildcards.method}/{wildcards.pair}/{wildcards.task}/seed{wildcards.seed}"


def pair_student_dir(wildcards):
    return f"{RUN}/models/{config['pairs'][wildcards.pair]['student']}"


def method_settings(wildcards):
    """The settings a method's config dataclass takes (LoRA for every method so far)."""
    return config["lora"]


def method_inputs(wildcards):
    """Extra inputs a method needs (extracted weights, teacher targets): none for lora."""
    return {}


def eval_model_name(wildcards):
    """The model evaluated: 'vanilla' runs name a model in the pair slot; methods run the pair's student."""
    if wildcards.method == "vanilla":
        return wildcards.pair
    return config["pairs"][wildcards.pair]["student"]


def eval_model_config(wildcards):
    return config["models"][eval_model_name(wildcards)]


def eval_max_length(wildcards):
    return eval_model_config(wildcards).get("max_position_embeddings")


def task_data(wildcards):
    """Toy tasks read this run's test split; other tasks use evaluation.data overrides, if any."""
    if wildcards.task.startswith("toy_"):
        return {"data_files": {"test": f"{RUN}/data/{wildcards.task}/test.jsonl"}}
    return config["evaluation"]["data"].get(wildcards.task)


def eval_inputs(wildcards):
    """Model directory, task YAML, and the toy test split when the task reads one."""
    inputs = {
        "model": f"{RUN}/models/{eval_model_name(wildcards)}",
        "task": f"workflow/tasks/{wildcards.task}.yaml",
    }
    if wildcards.method != "vanilla":
        inputs["adapter"] = adapter_dir(wildcards)
    if wildcards.task.startswith("toy_"):
        inputs["data"] = f"{RUN}/data/{wildcards.task}/test.jsonl"
    return inputs


def importance_of(role, wildcards):
    """The importance file of a pair's teacher or student on the task."""
    model = config["pairs"][wildcards.pair][role]
    return f"{RUN}/importance/{model}/{wildcards.task}.json"


def teacher_importance(wildcards):
    return importance_of("teacher", wildcards)


def student_importance(wildcards):
    return importance_of("student", wildcards)


def adapter_targets():
    """Every trained adapter of the run."""
    return expand(
        f"{RUN}/adapters/{{method}}/{{pair}}/{{task}}/seed{{seed}}",
        method=config["methods"],
        pair=PAIRS,
        task=EVAL_TASKS,
        seed=SEEDS,
    )


def table_caption():
    """Says which scale the numbers come from, so toy results are never read as the papers'."""
    toy = all(t.startswith("toy_") for t in EVAL_TASKS)
    scale = "toy scale (CPU, invented world)" if toy else "paper protocol"
    return f"Run {config['run_name']}: {scale}; scores in %, mean ± std over seeds {SEEDS}"
