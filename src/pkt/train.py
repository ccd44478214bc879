"""One trainer for every transfer method: transformers' ``Trainer`` + peft LoRA + a method's hooks.

The method (``pkt.methods``) builds the peft model (its adapter initialisation) and may add an
auxiliary loss; everything else is shared: chat-formatted examples with the loss on response tokens
only, seeds, fp32 on CPU and bf16 on GPU, optional gradient checkpointing, a checkpoint every
``save_steps`` in a folder outside the output, and automatic resume from the last checkpoint when the
job is rerun after a kill (a SLURM requeue). The same ``train`` runs under ``torchrun`` /
``accelerate launch`` with several processes: ``python -m pkt.train spec.json``.
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
from pkt.data.records import collate, encode_split, ensure_pad_token, load_split
from pkt.io import atomic_dir, write_json
from pkt.sources import library_files

log = logging.getLogger(__name__)


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
) -> dict[str, Any] | None:
    """Train one adapter; write it, with its training figures, to ``out_dir`` (atomically, rank 0).

    Checkpoints go to ``checkpoint_dir/run-<key>`` (:mod:`pkt.checkpoints`): a rerun after a kill
    resumes from the last complete checkpoint of the same run, never from another run's or a finished
    one. Returns the training figures on the main process (None on other ranks).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments, set_seed

    from pkt.methods import BUILTIN, get_method, method_module
    from pkt.models.build import run_dtype

    opts = TrainSettings.from_dict(settings)
    strategy = get_method(method).from_dict(method_settings, {k: Path(v) for k, v in (inputs or {}).items()})
    set_seed(seed)
    fitted = strategy.fit(Path(student_dir), Path(train_split), Path(out_dir), seed, device, opts.max_length)
    if fitted is not None:
        return fitted
    tokenizer = ensure_pad_token(AutoTokenizer.from_pretrained(student_dir))
    dtype = getattr(torch, run_dtype(device))
    model = AutoModelForCausalLM.from_pretrained(student_dir, dtype=dtype)
    model = strategy.init_adapter(model, tokenizer)
    records = load_split(train_split)
    if not records:
        raise ValueError(f"train split {train_split} is empty")
    encoded, length_rule = encode_split(records, tokenizer, opts.max_length)
    log.info("length rule at %d tokens: %d of %d examples cut, %d dropped", opts.max_length,
             length_rule["truncated"], length_rule["examples"], length_rule["dropped"])
    dataset = Dataset.from_list(_indexed(encoded, strategy))

    code = library_files("pkt.train", method_module(method)) if method in BUILTIN else library_files("pkt.train")
    key = run_key(method, method_settings, dataclasses.asdict(opts), seed, student_dir, train_split, inputs, code)
    ckpt = run_dir(checkpoint_dir, key)
    resume = resume_point(ckpt)
    if resume:
        log.info("resuming from %s", resume)
    args = TrainingArguments(
        output_dir=str(ckpt), num_train_epochs=opts.epochs, max_steps=opts.max_steps,
        per_device_train_batch_size=opts.batch_size, gradient_accumulation_steps=opts.grad_accum,
        learning_rate=opts.lr, lr_scheduler_type="linear", warmup_steps=opts.warmup, weight_decay=0.0,
        logging_steps=opts.logging_steps, save_strategy="steps", save_steps=opts.save_steps, save_total_limit=1,
        report_to="none", seed=seed, data_seed=seed, use_cpu=device == "cpu", bf16=device.startswith("cuda"),
        gradient_checkpointing=opts.gradient_checkpointing, remove_unused_columns=False,
        dataloader_num_workers=0, disable_tqdm=False,
    )
    trainer = make_trainer_class()(
        model=model, args=args, train_dataset=dataset, method=strategy,
        data_collator=partial(collate, pad_id=tokenizer.pad_token_id),
        callbacks=[*strategy.callbacks(), mark_complete_callback()],  # method state saved before the mark
    )
    start = time.perf_counter()
    aligned = None if resume else _align_phase(strategy, model, tokenizer, opts, seed, device, ckpt)
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - start
    if not trainer.is_world_process_zero():
        return None
    curve = [[h["step"], h["loss"]] for h in trainer.state.log_history if "loss" in h]
    figures = {
        "method": method,
        "seed": seed,
        "steps": trainer.state.global_step,
        "examples": len(records),
        "length_rule": length_rule,
        "epochs": opts.epochs if opts.max_steps <= 0 else None,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "final_loss": curve[-1][1] if curve else float(result.training_loss),  # the last logged loss
        "mean_loss": float(result.training_loss),  # mean over the steps this process ran
        "loss_curve": curve,
        "align_phase": aligned,  # a method's phase before training (SemAlign v1's alignment), or None
        "resumed_from": Path(resume).name if resume else None,
        "run_key": key,
        "wall_s": round(wall, 2),  # this process's training time (after a resume: the remaining steps)
        "tokens": trainer.tokens_seen,  # real (unpadded) tokens this process trained on
        "tokens_per_s": round(trainer.tokens_seen / max(wall, 1e-9), 1),
        "device": device,
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
