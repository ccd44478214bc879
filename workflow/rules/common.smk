# Validation, wildcard constraints, paths and input functions. No rules here.

import sys

from pkt.config_checks import active, check_config, table_reference, task_yaml, tasks_of
from pkt.config_checks import prepared_tasks, splits_of, train_task_of, trained_tasks
from pkt.config_settings import train_settings as resolved_train, semalign_tasks
from pkt.config_settings import method_settings as resolved_method, semalign_settings as resolved_semalign
from pkt.config_schema import check_schema
from pkt.data import SOURCES as DATA_SOURCES
from pkt.evaluation.alpaca_farm import plan_errors as alpaca_plan_errors
from pkt.evaluation.superni import data_errors as superni_data_errors
from pkt.evaluation.tasks import declared_samples
from pkt.models.hub_config import resolve_models
from pkt.methods import method_module
from pkt.methods.schema import schema_file
from pkt.resources import job_resources, parameter_count
from pkt.rows import INPUTS, TRANSFER, ablation_of, ablation_rows, extract_overrides, method_of, method_spec
from pkt.rows import transfer_source
from pkt.runtime import pin_cpu
from pkt.sources import relative_files
from pkt.transfer_probe import PROBE_ROWS, PROBE_TASK, probe_settings
from snakemake.utils import validate


# The schema file, plus the section of any method that is not built in (from its dataclass: pkt.methods.schema).
with schema_file(f"{workflow.basedir}/workflow/schemas/config.schema.yaml", config) as schema_path:
    check_schema(config, schema_path)  # every problem, one line each
    validate(config, schema=schema_path, set_default=True)  # valid: this fills in the defaults
config.update(active(config))  # the data source's models and pairs (a paper config keeps the toy defaults)
config["models"] = resolve_models(config["models"])  # hub sizes from config.json; toy defaults for toy models only
config["semalign"].update(semalign_tasks(config))  # null analysis/ablation tasks: the run's own
check_config(config, tasks_dir=f"{workflow.basedir}/workflow/tasks",  # evaluation.tasks: their YAMLs too
             extra=superni_data_errors(config["evaluation"]) + alpaca_plan_errors(config))  # files, API keys
config["tables"]["reference"] = table_reference(config)  # null: lora when it runs, else the student
pin_cpu(config["reproducible_cpu"])  # before any job's torch loads: every job inherits the environment

RUN = f"results/{config['run_name']}"
LOGS = f"logs/{config['run_name']}"
TOY = config["data"]["source"] == "toy"  # the generated world and toy models; else the paper splits, hub models
EVAL_TASKS = config["evaluation"]["tasks"]
# {evaluated task: the task whose splits its adapter trains on} (evaluation.train_task; itself by default): Seeking's
# GSM8K 0- and 8-shot evaluations share one adapter, trained on its GSM set.
TRAIN_OF = train_task_of(config)
TRAIN_TASKS = trained_tasks(config)  # and AlpacaFarm's LIMA set where it is judged (seeking_eval.alpaca_farm)
ALPACA = config["seeking_eval"]["alpaca_farm"]  # Seeking's AlpacaFarm column (the alpaca_farm jobs): off by default
TASKS = prepared_tasks(config)  # tasks whose splits prepare_data writes: the toy world's, or the used paper files
SPLITS_OF = splits_of(config, TASKS)  # {task: its splits}: train/extract/align(/test for the toy world)
SPLITS = sorted({split for splits in SPLITS_OF.values() for split in splits})
CORPORA = ["teacher", "student"] if TOY else []
MODELS = list(config["models"])
# Seeking's task-transfer rows (seeking.transfer): seeking_from_<task>, trained on every task from <task>'s factors.
TRANSFER_ROWS = [f"{TRANSFER}{task}" for task in config["seeking"]["transfer"]]
# Seeking's ablation rows (seeking.ablation): seeking_<switch>_<variant>, factors cut with one switch changed.
ABLATION_ROWS = ablation_rows(config["seeking"]["ablation"])
TRAINED = [*config["methods"], *TRANSFER_ROWS, *ABLATION_ROWS]  # every row a train job fits adapters for
EXTRACT_TASKS = list(dict.fromkeys([*TRAIN_TASKS, *config["seeking"]["transfer"]]))  # Seeking's factors, by task
# An extract job's work in sensitivity passes (one per task); cutting an ablation row's factors costs about half one.
EXTRACT_UNITS = len(EXTRACT_TASKS) + len(ABLATION_ROWS) * len(TRAIN_TASKS) / 2
SEEKING_TABLES = any(task.startswith("seeking_") for task in EVAL_TASKS)  # Seeking's own protocol: its tables too
METHODS = ["vanilla", *TRAINED]
PAIRS = list(config["pairs"])
SEEDS = config["seeds"]
# An evaluate job's work in greedy-task units: a task sampled n times per item (HumanEval: 20) counts n.
EVAL_UNITS = sum(declared_samples(f"{workflow.basedir}/workflow/tasks", task, config["evaluation"]["sampling"])
                 for task in EVAL_TASKS)


wildcard_constraints:
    model="|".join(MODELS),
    task="|".join(dict.fromkeys(TASKS + EVAL_TASKS)),
    split="|".join(SPLITS),
    method="|".join(METHODS),
    pair="|".join([*config["pairs"], *MODELS]),
    seed=r"\d+",


def model_dirs():
    """Every model directory of the run."""
    return expand(f"{RUN}/models/{{model}}", model=MODELS)


def model_inputs(wildcards):
    """A toy model's tokenizer and pretraining corpus (models.<model>.corpus); a hub model needs none."""
    model = config["models"][wildcards.model]
    if "hub" in model:
        return {}
    return {"tokenizer": f"{RUN}/tokenizer", "corpus": f"{RUN}/data/corpus/{model['corpus']}.jsonl"}


def analysis_split(wildcards):
    """The inputs SemAlign's analysis runs on: the toy test split, or (paper data) the task's train split."""
    task = config["semalign"]["analysis_task"]
    return f"{RUN}/data/{task}/{'test' if TOY else 'train'}.jsonl"


def code(*entries):
    """Every library file a rule's script runs (its imports, followed transitively: pkt.sources), plus those of
    any module the script picks by name (a method, a data source): declared as inputs, so that editing any
    of them reruns the rule's jobs, and none can be forgotten."""
    return relative_files(*entries, root=workflow.basedir)


def per_task(pattern, tasks=None):
    """``pattern`` once per task, its ``{task}`` filled in and other wildcards left: one job, every task."""
    return [pattern.replace("{task}", task) for task in (tasks or EVAL_TASKS)]


def per_seed_task(pattern, seeds=None, tasks=None):
    """``pattern`` once per seed and task (``{seed}``, ``{task}`` filled in): one job, every seed and task."""
    return [p.replace("{seed}", str(seed)) for seed in (SEEDS if seeds is None else seeds)
            for p in per_task(pattern, tasks)]


def by_task(pattern, tasks=None):
    """{task: path} of :func:`per_task`: a job's per-task inputs, outputs or folders, by task."""
    tasks = tasks or EVAL_TASKS
    return dict(zip(tasks, per_task(pattern, tasks)))


def vanilla_models():
    """Every teacher and student of a pair: each is evaluated once, as it is."""
    return sorted({p[role] for p in config["pairs"].values() for role in ("teacher", "student")})


def eval_targets():
    """Vanilla teacher and student of every pair (seed 0), and every method x pair x seed, on every task."""
    vanilla = expand(f"{RUN}/eval/vanilla/{{model}}/{{task}}/seed0.json", model=vanilla_models(), task=EVAL_TASKS)
    methods = expand(
        f"{RUN}/eval/{{method}}/{{pair}}/{{task}}/seed{{seed}}.json",
        method=config["methods"],
        pair=PAIRS,
        task=EVAL_TASKS,
        seed=SEEDS,
    )
    return vanilla + methods


def by_seed_task(pattern, tasks=None):
    """{seed: {task: path}} of :func:`per_seed_task`."""
    return {seed: by_task(pattern.replace("{seed}", str(seed)), tasks) for seed in SEEDS}


def adapter_dirs(wildcards):
    """{seed: {train task: adapter directory}} of one method and pair: what one train job writes."""
    return by_seed_task(f"{RUN}/adapters/{wildcards.method}/{wildcards.pair}/{{task}}/seed{{seed}}", TRAIN_TASKS)


def checkpoint_dirs(wildcards):
    """Trainer checkpoints live outside the output, so a killed job's progress survives for resume."""
    return by_seed_task(f"{RUN}/checkpoints/{wildcards.method}/{wildcards.pair}/{{task}}/seed{{seed}}", TRAIN_TASKS)


def train_splits(wildcards):
    """{task: train split} of every task a train job fits an adapter for."""
    return by_task(f"{RUN}/data/{{task}}/train.jsonl", TRAIN_TASKS)


def pair_student_dir(wildcards):
    return f"{RUN}/models/{config['pairs'][wildcards.pair]['student']}"


def semalign_settings(task):
    """pkt.methods.semalign.method.SemAlignSettings of one task (pkt.config_checks.semalign_settings: the lora and
    semalign sections, semalign.align.tasks[task] over semalign.align)."""
    return resolved_semalign(config, task)


def method_settings(wildcards):
    """{task: the settings of a method's config dataclass (pkt.methods.<method>)}: the lora section and its own,
    with the task's overrides where the method has them (pkt.config_checks.method_settings)."""
    return resolved_method(config, wildcards.method, TRAIN_TASKS)


def pair_teacher_dir(wildcards):
    return f"{RUN}/models/{config['pairs'][wildcards.pair]['teacher']}"


# Where the workflow makes each input a method may need (its class's ``needs``, pkt.rows.INPUTS), and the file
# the DAG waits on inside a folder that is not a rule's directory() output.
METHOD_INPUTS = {
    "targets": "{run}/targets/{pair}/{task}",  # teacher_targets
    "extract": "{run}/extract/{pair}/{task}",  # extract_seeking (an ablation row's: its folder below the task's)
    "teacher": "{run}/models/{teacher}",  # the pair's teacher
    "align_split": "{run}/data/{task}/align.jsonl",
    "extract_split": "{run}/data/{task}/extract.jsonl",
}
METHOD_INPUT_FILES = {"extract": "factors.safetensors"}
if set(METHOD_INPUTS) != set(INPUTS):
    raise ValueError(f"METHOD_INPUTS {sorted(METHOD_INPUTS)} must make every one of pkt.rows.INPUTS {sorted(INPUTS)}")


def method_task_inputs(wildcards):
    """{task: {input name: path}} handed to each task's training (pkt.train's ``inputs``): the inputs the method's
    class ``needs``, in its order (pkt.rows.method_spec: read from its source, without importing it)."""
    pair = wildcards.pair
    where = {"run": RUN, "pair": pair, "teacher": config["pairs"][pair]["teacher"]}
    needs = method_spec(wildcards.method).needs
    source = transfer_source(wildcards.method)  # a transfer row's factors: its source task's, for every task

    def path(name, task):
        if name != "extract":
            return METHOD_INPUTS[name].format(task=task, **where)
        folder = METHOD_INPUTS[name].format(task=source or task, **where)
        return f"{folder}/{wildcards.method}" if ablation_of(wildcards.method) else folder

    return {task: {name: path(name, task) for name in needs} for task in TRAIN_TASKS}


def method_inputs(wildcards):
    """Files a method needs besides the student and the train splits, for every task (the DAG's edges)."""
    named = {}
    for by_name in method_task_inputs(wildcards).values():
        for name, path in by_name.items():
            if name in METHOD_INPUT_FILES:
                path = f"{path}/{METHOD_INPUT_FILES[name]}"
            named.setdefault(name, [])
            if path not in named[name]:
                named[name].append(path)
    return named


def method_code(wildcards):
    """The code of the method a train job runs (pkt.methods.method_module: imported by name at run time)."""
    return code(method_module(wildcards.method))


def eval_model_name(wildcards):
    """The model evaluated: 'vanilla' runs name a model in the pair slot; methods run the pair's student."""
    if wildcards.method == "vanilla":
        return wildcards.pair
    return config["pairs"][wildcards.pair]["student"]


def eval_model_config(wildcards):
    return config["models"][eval_model_name(wildcards)]


def max_length_of(model):
    """One length for every stage of a model: config max_length, capped at its max_position_embeddings."""
    positions = config["models"][model]["max_position_embeddings"]
    return positions if config["max_length"] is None else min(config["max_length"], positions)


def model_max_length(wildcards):
    return max_length_of(wildcards.model)


def eval_max_length(wildcards):
    return max_length_of(eval_model_name(wildcards))


def train_settings(wildcards):
    """{task: the train section with the method's and task's overrides (train.per_method), plus the student's
    max_length} (pkt.train.TrainSettings); LaTen, which does not fine-tune, gets only the length, so a
    train key change does not rerun it. The ablation's jobs (no method wildcard) train as semalign."""
    max_length = max_length_of(config["pairs"][wildcards.pair]["student"])
    method = getattr(wildcards, "method", "semalign")
    method = method_of(method)  # a fixed row trains by its method's recipe (seeking_from_<task>: Seeking's)
    if method == "laten":
        return {task: {"max_length": max_length} for task in TRAIN_TASKS}
    return resolved_train(config["train"], method, TRAIN_TASKS, max_length)


def task_data(wildcards):
    """{task: data location}: toy tasks read this run's test split; others use evaluation.data overrides."""
    data = {}
    for task in EVAL_TASKS:
        if task.startswith("toy_"):
            data[task] = {"data_files": {"test": f"{RUN}/data/{task}/test.jsonl"}}
        else:
            data[task] = config["evaluation"]["data"].get(task)
    return data


def eval_inputs(wildcards):
    """Model directory, task YAMLs, the toy test splits, and (methods) every task's adapter."""
    inputs = {
        "model": f"{RUN}/models/{eval_model_name(wildcards)}",
        # A task lm-eval registers has no YAML here; the folder is named by utils.py when no task has one.
        "tasks": [f"workflow/tasks/{task}.yaml" for task in EVAL_TASKS
                  if task_yaml(f"{workflow.basedir}/workflow/tasks", task) is not None] or ["workflow/tasks/utils.py"],
        "data": [f"{RUN}/data/{task}/test.jsonl" for task in EVAL_TASKS if task.startswith("toy_")],
        # What the YAMLs load by name (lm-eval's !function, a task's data file): editing it reruns the evaluations.
        "task_code": ["workflow/tasks/utils.py", *sorted(str(p.relative_to(workflow.basedir))
                                                         for p in Path(workflow.basedir, "workflow/tasks").glob("*.json"))],
    }
    if wildcards.method != "vanilla":
        inputs["adapters"] = [d for by_task in adapter_dirs(wildcards).values() for d in by_task.values()]
    return inputs


def eval_adapters(wildcards):
    """{seed: {task: adapter directory}} an evaluate job loads; none for a vanilla model."""
    return {} if wildcards.method == "vanilla" else adapter_dirs(wildcards)


def importance_of(role, wildcards):
    """The importance files of a pair's teacher or student, one per task."""
    model = config["pairs"][wildcards.pair][role]
    return per_task(f"{RUN}/importance/{model}/{{task}}.json", TASKS)


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
        task=TRAIN_TASKS,
        seed=SEEDS,
    )


def table_caption():
    """Says which scale the numbers come from, so toy results are never read as the papers'."""
    toy = all(t.startswith("toy_") for t in EVAL_TASKS)
    scale = "toy scale (CPU, invented world)" if toy else "paper protocol"
    return f"Run {config['run_name']}: {scale}; scores in %, mean ± std over seeds {SEEDS}"


ABLATION = config["semalign"]["ablation"]
ABLATION_TASK = ABLATION["task"]
ABLATION_SEEDS = ABLATION["seeds"] or SEEDS


def ablation_slugs():
    """The SemAlign ablation's variants (pkt.methods.semalign.ablation.variants), by folder name."""
    from pkt.methods.semalign.ablation import variants

    return list(variants(config["semalign"]))


def ablation_results(pair="{pair}", variant=None):
    """Every variant x seed result file of one pair's SemAlign ablation, or of one ``variant``'s."""
    return [f"{RUN}/ablation/{pair}/{slug}/seed{seed}.json" for slug in ([variant] if variant else ablation_slugs())
            for seed in ABLATION_SEEDS]


PROBE = config["transfer_probe"]
PROBE_SEEDS = PROBE["seeds"] or SEEDS


def probe_results(pair="{pair}"):
    """Every row x seed result file of one pair's transfer probe (pkt.transfer_probe)."""
    return [f"{RUN}/transfer_probe/{pair}/{row}/seed{seed}.json" for row in PROBE_ROWS for seed in PROBE_SEEDS]


def probe_rows():
    """{row: (method, settings)} of the transfer probe: each method as configured for the task whose facts it
    asks (pkt.config_checks.method_settings), with the probe's overrides (pkt.transfer_probe.probe_settings)."""
    methods = sorted({method for method, _ in PROBE_ROWS.values()})
    return probe_settings({m: resolved_method(config, m, [PROBE_TASK])[PROBE_TASK] for m in methods})


def probe_method_modules():
    """The modules of every method the probe trains (imported by name at run time)."""
    return sorted({method_module(method) for method, _ in PROBE_ROWS.values()})
