# Resources of the model jobs (pkt.resources: sized from the configured models, checked against max_runtime) and
# the planning that depends on them or on Seeking's rows. No rules here; included after common.smk.

ON_GPU = config["device"] != "cpu"  # auto and cuda jobs ask the scheduler for a GPU; cpu jobs never do


def with_asks(message):
    """A rule's message followed by the resources its job asks for (a dry run prints the message instead)."""
    return f"{message} [gpu={{resources.gpu}}, mem_mb={{resources.mem_mb}}, runtime={{resources.runtime}} min]"


def job_models(roles, wildcards):
    """Names of the models a job loads: its {model}, its pair's teacher/student, or the evaluated model."""
    pair = config["pairs"].get(getattr(wildcards, "pair", None), {})
    named = {"model": lambda: wildcards.model, "evaluated": lambda: eval_model_name(wildcards),
             "teacher": lambda: pair["teacher"], "student": lambda: pair["student"],
             "laten_teacher": lambda: pair["teacher"] if wildcards.method == "laten" else None}
    return [name for name in (named[role]() for role in roles) if name is not None]


def model_size(name):
    """Parameters of ``models.<name>`` (pkt.resources.parameter_count; a hub model counts its own vocabulary)."""
    return parameter_count(config["models"][name], config["tokenizer"]["vocab_size"])


def by_key(of):
    """``resources:`` entries (mem_mb, runtime, gpu), each read from ``of(wildcards)``."""
    return {key: (lambda wc, key=key: of(wc)[key]) for key in ("mem_mb", "runtime", "gpu")}


def sized(stage, *roles, units=1):
    """Portable resources (mem_mb, runtime, gpu) of a model job, from the sizes of the models it loads
    (pkt.resources): ``resources: **sized("train", "student", units=...)``; ``stage`` and ``units`` may be
    functions of the wildcards. A runtime over max_runtime is named (:func:`over_limit`). Site settings stay in
    profiles/."""

    def of(wc):
        name = stage(wc) if callable(stage) else stage
        asked = job_resources(name, [model_size(n) for n in job_models(roles, wc)],
                              units=units(wc) if callable(units) else units, gpu=ON_GPU)
        over_limit(name, wc, asked["runtime"])
        return asked

    return by_key(of)


WARNED = set()


def over_limit(stage, wildcards, runtime):
    """Warn, once per job and before any runs, where a job's estimated runtime exceeds max_runtime (the cluster
    would kill it: split its work, or raise the limit where the partition allows)."""
    limit, key = config["max_runtime"], (stage, tuple(sorted(dict(wildcards).items())))
    if limit is None or runtime <= limit or key in WARNED:
        return
    WARNED.add(key)
    where = ", ".join(f"{k}={v}" for k, v in key[1]) or "no wildcards"
    print(f"WARNING: a {stage} job ({where}) is estimated at {runtime} min, over max_runtime {limit} min: the "
          "cluster would stop it; cut its work (fewer seeds or tasks per run) or raise max_runtime where the "
          "partition allows (profiles/slurm/config.yaml)", file=sys.stderr)


def train_stage(wildcards):
    """A train job's stage: LaTen's translator steps, or a fine-tuning (pkt.resources.STAGES)."""
    return "laten" if method_of(wildcards.method) == "laten" else "train"


def train_units(wildcards):
    """A train job's work: LaTen's translator steps over its tasks (laten.steps, per task) x seeds, or an adapter
    per task and seed."""
    if train_stage(wildcards) == "laten":
        settings = resolved_method(config, "laten", TRAIN_TASKS)
        return sum(settings[task]["steps"] for task in TRAIN_TASKS) * len(SEEDS)
    return len(TRAIN_TASKS) * len(SEEDS)


def prepare_resources():
    """prepare_model's resources: a toy model pretrains (on the run's device); a hub model is downloaded on
    the host (no GPU, no model in memory)."""

    def of(wildcards):
        hub = "hub" in config["models"][wildcards.model]
        stage = "snapshot" if hub else "pretrain"
        return job_resources(stage, [model_size(wildcards.model)], gpu=ON_GPU and not hub)

    return by_key(of)


def ablation_extract_outputs():
    """extract_seeking's outputs for the ablation rows: each row's factors and record, for every task it trains on,
    in a folder below the task's (``extract/<pair>/<task>/<row>``); none without seeking.ablation."""
    if not ABLATION_ROWS:
        return {}
    folder = METHOD_INPUTS["extract"].format(run=RUN, pair="{pair}", task="{task}")  # as method_task_inputs reads it
    return {kind: [f"{folder}/{row}/{name}".replace("{task}", task) for row in ABLATION_ROWS for task in TRAIN_TASKS]
            for kind, name in (("ablation_factors", "factors.safetensors"), ("ablation_records", "extract.json"))}


SEEKING_TABLES_SHOWN = {"main": "Seeking Table 1", "transfer": "Seeking task transfer", "ablation": "Seeking ablation"}


def seeking_table_outputs():
    """The tables seeking_tables writes: the transfer table only where seeking.transfer names tasks, the ablation
    table only where seeking.ablation names switches; each CSV in the report beside the run's other tables."""
    names = ["main", *(["transfer"] if TRANSFER_ROWS else []), *(["ablation"] if ABLATION_ROWS else [])]
    outputs = {f"{name}_{ext}": f"{RUN}/tables/seeking_{name}.{ext}" for name in names for ext in ("csv", "md", "tex")}
    for name in names:
        outputs[f"{name}_csv"] = report(outputs[f"{name}_csv"], caption=f"../report/seeking_{name}.rst",
                                        category="Tables", labels={"table": SEEKING_TABLES_SHOWN[name]})
    return outputs


def seeking_main_evals():
    """The eval results Seeking's Table 1 reads: the vanilla models', lora's and seeking's (eval/<method>/...),
    and lora's and seeking's AlpacaFarm win rates where they are judged."""
    evals = [path for path in eval_targets() if Path(path).parts[-4] in ("vanilla", "lora", "seeking")]
    return evals + alpaca_evals([m for m in ("lora", "seeking") if m in config["methods"]])


def row_evals(rows):
    """Every eval result of ``rows`` (each pair, evaluated task and seed), and their AlpacaFarm results where they
    are judged: what a Seeking table of those rows reads."""
    evals = expand(f"{RUN}/eval/{{row}}/{{pair}}/{{task}}/seed{{seed}}.json", row=rows, pair=PAIRS, task=EVAL_TASKS,
                   seed=SEEDS)
    return evals + alpaca_evals(rows)


def alpaca_evals(rows):
    """The AlpacaFarm results of ``rows`` (the alpaca_farm jobs: each row's adapters trained on the LIMA set, every
    pair and seed); none where seeking_eval.alpaca_farm is off."""
    if not ALPACA["enabled"]:
        return []
    return expand(f"{RUN}/eval/{{row}}/{{pair}}/alpaca_farm/seed{{seed}}.json", row=rows, pair=PAIRS, seed=SEEDS)


def ablation_split():
    """Whether the SemAlign ablation runs as a job per variant: where one job for all would be estimated over
    max_runtime (paper scale: ~54 h for six variants x three seeds of a 7B student); else one job per pair (one
    import and model load: what a toy run wants)."""
    if config["max_runtime"] is None or "semalign" not in config["methods"]:
        return False
    whole = len(ablation_results("x"))
    return any(job_resources("ablation", [model_size(p["teacher"]), model_size(p["student"])], units=whole,
                             gpu=ON_GPU)["runtime"] > config["max_runtime"] for p in config["pairs"].values())


ABLATION_SPLIT = ablation_split()
ABLATION_JOB = "-{variant}" if ABLATION_SPLIT else ""  # a split job's log and benchmark: one per variant
