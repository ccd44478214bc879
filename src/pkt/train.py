"""One trainer for every transfer method: transformers' ``Trainer`` + peft LoRA + a method's hooks.

The method (``pkt.methods``) builds the peft model (its adapter initialisation) and may add an
auxiliary loss; everything else is shared: chat-formatted examples with the loss on response tokens
only, seeds, fp32 on CPU and bf16 on GPU, optional gradient checkpointing, a checkpoint every
``save_steps`` in a folder outside the output, and automatic resume from the last checkpoint when the
job is rerun after a kill (a SLURM requeue). Each checkpoint carries the run's figures up to it
(:data:`PROGRESS`), so a resumed run's ``training.json`` reports the whole run, not the steps after the
resume. The same ``train`` runs under ``torchrun`` / ``accelerate launch`` with several processes:
``python -m pkt.train spec.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pkt.checkpoints import mark_complete_callback, mark_finished, resume_point, run_dir, run_key
from pkt.data.manifest import verified
from pkt.data.records import collate, encode_split, load_split
from pkt.io import atomic_dir, write_json
from pkt.runtime import cpu_provenance
from pkt.sources import SRC, library_files

log = logging.getLogger(__name__)

PROGRESS = "pkt-progress.json"  # in each checkpoint: the whole run's figures up to its step (progress_callback)
FRESH = {"step": 0, "loss_sum": 0.0, "tokens": 0, "wall_s": 0.0, "align_phase": None}  # before any step


@dataclass
class TrainSettings:
    """Optimisation settings of the ``train`` config section (Seeking 1.7 / SemAlign A.2 at paper scale)."""

    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 3e-4
    warmup: float = 0.03  # a share of the total steps
    max_length: int = 256
    save_steps: int = 20
    logging_steps: int = 5
    gradient_checkpointing: bool = False
    keep_checkpoints: bool = False
    report_to: str = "none"  # the Trainer's logger: none | tensorboard (offline event files, logging_dir)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"train: unknown setting(s) {unknown}; known: {sorted(names)}")
        return cls(**d)


def make_trainer_class():
    """A ``Trainer`` that adds the method's auxiliary loss (built lazily: transformers is heavy)."""
    from transformers import Trainer

    class MethodTrainer(Trainer):
        def __init__(self, *args, method, **kwargs):
            super().__init__(*args, **kwargs)
            self.method = method
            self.tokens_seen = 0  # real (unpadded) tokens this process trained on, for tokens_per_s
            self.loss_total = 0.0  # the sum of this process's step losses, as the Trainer sums them
            self.carried = dict(FRESH)  # the figures of the steps before this process (a resumed checkpoint's)
            self.started = time.perf_counter()

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            self.loss_total += float(loss)  # the Trainer adds this to its step loss (training_loss's sum)
            return loss

        def progress(self) -> dict[str, Any]:
            """The whole run's figures up to the current step: what a process resuming from here carries on."""
            c = self.carried
            return {"step": self.state.global_step, "loss_sum": c["loss_sum"] + self.loss_total,
                    "tokens": c["tokens"] + self.tokens_seen,
                    "wall_s": c["wall_s"] + time.perf_counter() - self.started, "align_phase": c["align_phase"]}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                self.tokens_seen += int(inputs["attention_mask"].sum())
            extras = {k: inputs.pop(k) for k in self.method.extra_keys if k in inputs}  # not for the model
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                                 num_items_in_batch=num_items_in_batch)
            loss = self.method.supervised_weight * loss
            aux = self.method.aux_loss(model, {**inputs, **extras}, outputs)
            if aux is not None:
                if num_items_in_batch is not None:  # the supervised loss is already scaled for accumulation:
                    # the aux term, a mean per micro-batch, is weighted by this optimizer step's micro-batch
                    # count, which is smaller than gradient_accumulation_steps at an epoch's uneven end
                    steps = getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
                    aux = aux / steps
                loss = loss + aux
            return (loss, outputs) if return_outputs else loss

    return MethodTrainer


def train(
    method: str,
    method_settings: dict[str, Any],
    student_dir: str | os.PathLike[str],
    train_split: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str],
    settings: dict[str, Any],
    seed: int = 0,
    device: str = "cpu",
    inputs: dict[str, str] | None = None,
    logging_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any] | None:
    """Train one adapter; write it, with its training figures, to ``out_dir`` (atomically, rank 0).

    Checkpoints go to ``checkpoint_dir/run-<key>`` (:mod:`pkt.checkpoints`): a rerun after a kill
    resumes from the last complete checkpoint of the same run, never from another run's or a finished
    one. Returns the training figures on the main process (None on other ranks). ``logging_dir``: where the
    logger of ``settings["report_to"]`` (tensorboard) writes, outside the checkpoints, which are deleted.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainingArguments, set_seed

    from pkt.methods import get_method
    from pkt.models.build import load_tokenizer, run_dtype

    opts = TrainSettings.from_dict(settings)
    records, data = verified(train_split)  # a split changed since prepare_data is refused before any model loads
    strategy = get_method(method).from_dict(method_settings, {k: Path(v) for k, v in (inputs or {}).items()})
    set_seed(seed)
    fitted = strategy.fit(Path(student_dir), Path(train_split), Path(out_dir), seed, device, opts.max_length)
    if fitted is not None:
        return fitted
    tokenizer = load_tokenizer(student_dir)  # a folder without its tokenizer is named
    dtype = getattr(torch, run_dtype(device))
    model = AutoModelForCausalLM.from_pretrained(student_dir, dtype=dtype)
    model = strategy.init_adapter(model, tokenizer)
    if not records:
        raise ValueError(f"train split {train_split} is empty")
    encoded, length_rule = encode_split(records, tokenizer, opts.max_length)
    log.info("length rule at %d tokens: %d of %d examples cut, %d dropped", opts.max_length,
             length_rule["truncated"], length_rule["examples"], length_rule["dropped"])
    dataset = Dataset.from_list(_indexed(encoded, strategy))

    args = TrainingArguments(
        output_dir=str(checkpoint_dir), num_train_epochs=opts.epochs, max_steps=opts.max_steps,
        per_device_train_batch_size=opts.batch_size, gradient_accumulation_steps=opts.grad_accum,
        learning_rate=opts.lr, lr_scheduler_type="linear", warmup_steps=opts.warmup, weight_decay=0.0,
        logging_steps=opts.logging_steps, save_strategy="steps", save_steps=opts.save_steps, save_total_limit=1,
        report_to=opts.report_to, seed=seed, data_seed=seed, use_cpu=device == "cpu", bf16=device.startswith("cuda"),
        gradient_checkpointing=opts.gradient_checkpointing, remove_unused_columns=False,
        dataloader_num_workers=0, disable_tqdm=False,
    )
    key = run_key(method, method_settings, dataclasses.asdict(opts), seed, student_dir, train_split, inputs,
                  training_code(method), runtime(device, args))
    ckpt = run_dir(checkpoint_dir, key)
    args.output_dir = str(ckpt)  # known once the arguments have told the key how many processes train
    resume = resume_point(ckpt)
    if resume:
        log.info("resuming from %s", resume)
    if opts.report_to == "tensorboard" and logging_dir is not None:  # transformers 5 reads the folder from here
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(logging_dir)
    progress = progress_callback()
    trainer = make_trainer_class()(
        model=model, args=args, train_dataset=dataset, method=strategy,
        data_collator=partial(collate, pad_id=tokenizer.pad_token_id),
        callbacks=[*strategy.callbacks(), progress, mark_complete_callback()],  # all saved before the mark
    )
    progress.trainer = trainer
    start = trainer.started = time.perf_counter()
    if resume:
        trainer.carried = carried_progress(Path(resume))
    else:
        trainer.carried["align_phase"] = _align_phase(strategy, model, tokenizer, opts, seed, device, ckpt)
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - start
    if not trainer.is_world_process_zero():
        return None
    carried, steps = trainer.carried, trainer.state.global_step
    mean_loss = float(result.training_loss)  # the Trainer's: the mean over the steps this process ran
    if resume:  # ... and the steps before the checkpoint, from the processes that ran them
        mean_loss = (carried["loss_sum"] + mean_loss * (steps - carried["step"])) / max(steps, 1)
    tokens, wall = carried["tokens"] + trainer.tokens_seen, carried["wall_s"] + wall
    curve = [[h["step"], h["loss"]] for h in trainer.state.log_history if "loss" in h]
    figures = {
        "method": method,
        "seed": seed,
        "steps": steps,
        "examples": len(records),
        "data": data,  # the train split: {file, sha256, records}, checked against the manifest
        "length_rule": length_rule,
        "epochs": opts.epochs if opts.max_steps <= 0 else None,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "final_loss": curve[-1][1] if curve else float(result.training_loss),  # the last logged loss
        "mean_loss": mean_loss,  # mean over every step of the run (a resumed run's too)
        "loss_curve": curve,
        "align_phase": carried["align_phase"],  # a method's phase before training (SemAlign v1's alignment), or None
        "resumed_from": Path(resume).name if resume else None,
        "run_key": key,
        "wall_s": round(wall, 2),  # the steps' training time (a resumed run: the earlier processes' up to the
        # checkpoint, plus this one's; the work lost after the checkpoint is not counted)
        "tokens": tokens,  # real (unpadded) tokens rank 0 trained on, over every step of the run
        "tokens_per_s": round(tokens / max(wall, 1e-9), 1),
        "device": device,
        "cpu": cpu_provenance() if device == "cpu" else None,  # the CPU code path (pkt.runtime.CPU_PINS)
        "world_size": args.world_size,
        "settings": dataclasses.asdict(opts),
        "method_settings": method_settings,
    }
    with atomic_dir(out_dir) as tmp:
        strategy.export_adapter(trainer.model, Path(tmp))
        write_json(Path(tmp) / "training.json", figures)
    if opts.keep_checkpoints:
        mark_finished(ckpt)
    else:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return figures


def training_code(method: str, src: str | os.PathLike[str] = SRC) -> list[Path]:
    """Every library file under ``src`` that training ``method`` runs, for its resume key: the trainer's and the
    method module's imports, transitively (:func:`pkt.sources.library_files`), so helpers another method or
    wing holds (SemAlign's targets for FitNet, ``layers/importance.py``, ``models/build.py``) count too."""
    from pkt.methods import base_method
    from pkt.rows import method_file

    # Any method with a module (built in, a user's pkt.methods.<name>, a fixed row's method); a class a test
    # registers at run time has none and is keyed by the trainer's code alone.
    module = method_file(base_method(method), Path(src) / "pkt" / "methods")
    return library_files("pkt.train", *([module] if module is not None else []), src=src)


def runtime(device: str, args: Any) -> dict[str, Any]:
    """How a run computes, for its resume key (:func:`pkt.checkpoints.run_key`): the device kind and the dtype
    models load in (``device: auto`` may resolve to another after a requeue), and the processes and GPUs per
    process of the ``TrainingArguments`` ``args`` (torchrun's processes multiply the effective batch)."""
    from pkt.models.build import run_dtype

    return {"device": device.split(":")[0], "dtype": run_dtype(device), "processes": int(args.world_size),
            "gpus_per_process": int(args.n_gpu)}


def progress_callback():
    """A ``TrainerCallback`` writing the whole run's figures up to each checkpoint into it (:data:`PROGRESS`, rank
    0), before :func:`pkt.checkpoints.mark_complete_callback` marks it complete. Set its ``trainer``."""
    from transformers import TrainerCallback

    class KeepProgress(TrainerCallback):
        trainer = None

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                write_json(folder / PROGRESS, self.trainer.progress())

    return KeepProgress()


def carried_progress(checkpoint: Path) -> dict[str, Any]:
    """The figures of the steps up to ``checkpoint`` (:data:`PROGRESS`), which a resumed run adds to its own."""
    path = checkpoint / PROGRESS
    if not path.is_file():  # every complete checkpoint of this code has one (the key covers the code)
        raise FileNotFoundError(f"{path} is missing: {checkpoint} is not a checkpoint of this run's code")
    carried = json.loads(path.read_text())
    step = int(checkpoint.name.rsplit("-", 1)[1])
    if carried.get("step") != step:
        raise ValueError(f"{path} holds the figures of step {carried.get('step')}, not of step {step}")
    return {**FRESH, **carried}


def _indexed(encoded: list[dict], strategy) -> list[dict]:
    """Each example with its row (``example_index``) when the method reads per-example stored inputs."""
    if "example_index" not in strategy.extra_keys:
        return encoded
    return [{**e, "example_index": i} for i, e in enumerate(encoded)]


def _align_phase(strategy, model, tokenizer, opts: TrainSettings, seed: int, device: str, ckpt: Path):
    """Run the method's phase before training (``Method.align_phase``), if any, with its own Trainer.

    Skipped on a resume: the checkpoint's weights already include it. Returns what it did, for
    training.json.
    """
    phase = strategy.align_phase()
    if not phase:
        return None
    from datasets import Dataset
    from transformers import TrainingArguments

    encoded, _ = encode_split(load_split(phase["split"]), tokenizer, opts.max_length)
    args = TrainingArguments(
        output_dir=str(ckpt / "align-phase"), max_steps=phase["steps"], per_device_train_batch_size=opts.batch_size,
        learning_rate=phase["lr"], lr_scheduler_type="constant", weight_decay=0.0, logging_steps=1,
        save_strategy="no", report_to="none", seed=seed, data_seed=seed, use_cpu=device == "cpu",
        bf16=device.startswith("cuda"), remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = make_trainer_class()(model=model, args=args, train_dataset=Dataset.from_list(_indexed(encoded, strategy)),
                                   method=strategy, data_collator=partial(collate, pad_id=tokenizer.pad_token_id))
    strategy.begin_align()
    try:
        trainer.train()
    finally:
        strategy.end_align()
        shutil.rmtree(ckpt / "align-phase", ignore_errors=True)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"split": str(phase["split"]), "steps": trainer.state.global_step, "lr": phase["lr"], "losses": losses}


def launch(spec: dict[str, Any], processes: int, scratch: str | os.PathLike[str]) -> None:
    """Run :func:`train` with ``spec`` as its arguments in ``processes`` processes under ``torchrun`` (one per
    GPU the job was given): the Trainer wraps the model in DDP, rank 0 writes the adapter. One process runs
    it in this one, as does a method that fits without the Trainer (LaTen)."""
    import subprocess

    path = Path(scratch) / f"train-spec-{os.getpid()}.json"
    write_json(path, spec)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "pkt.train", str(path)]
    log.info("launching %s", " ".join(command))
    try:
        subprocess.run(command, check=True)
    finally:
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    """CLI for torchrun / accelerate: ``python -m pkt.train spec.json`` with ``train``'s arguments."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m pkt.train SPEC.json  (keys: the arguments of pkt.train.train)")
    logging.basicConfig(level=logging.INFO)
    train(**json.loads(Path(argv[0]).read_text()))


if __name__ == "__main__":
    main()
