"""pkt.train: methods registry, loss masking, and resume after a kill that reaches the same adapter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pkt.checkpoints import COMPLETE, FINISHED
from pkt.data.records import encode_supervised, write_split
from pkt.data.tokenizer import train_tokenizer
from pkt.data.toyworld import generate
from pkt.methods import LoraSettings, get_method
from pkt.models.build import llama_config

KILLER = """
import os, sys
import transformers
from transformers import TrainerCallback

from pkt.methods.base import Method, register

@register
class AlignedLora(Method):  # LoRA after a 2-step phase on another split, as SemAlign v1 aligns before training
    name = "aligned_lora"

    def align_phase(self):
        return {"split": self.inputs["align_split"], "steps": 2, "lr": 1e-3}

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == int(sys.argv[2]):
            os.kill(os.getpid(), 9)  # SIGKILL: no cleanup, like an OOM kill or a SLURM preemption

init = transformers.Trainer.__init__
def patched(self, *a, **k):
    init(self, *a, **k)
    self.add_callback(Kill())
if int(sys.argv[2]):  # 0: run to the end
    transformers.Trainer.__init__ = patched
from pkt.train import main
main([sys.argv[1]])
"""


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A tiny untrained student and a train split in the toy format."""
    from conftest import small_world
    from transformers import LlamaForCausalLM

    root = tmp_path_factory.mktemp("student")
    world = generate(small_world())
    tok = train_tokenizer(world.corpora["teacher"], vocab_size=400)
    arch = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 2, "max_position_embeddings": 256}
    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config(arch, tok))
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    write_split(root / "train.jsonl", world.splits["toy_mmlu"]["train"], prefix="t")
    return root


def spec(student: Path, out: Path, ckpt: Path, method: str = "lora", **settings) -> dict:
    return {"method": method, "method_settings": {"r": 4, "alpha": 8, "dropout": 0.1},
            "student_dir": str(student / "model"), "train_split": str(student / "train.jsonl"),
            "out_dir": str(out), "checkpoint_dir": str(ckpt),
            "settings": {"max_steps": 12, "batch_size": 4, "lr": 1e-3, "save_steps": 4, "logging_steps": 1, **settings},
            "seed": 3, "inputs": {"align_split": str(student / "train.jsonl")} if method == "aligned_lora" else None}


def run(spec_dict: dict, tmp: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
    path = tmp / f"spec-{kill_at}.json"
    path.write_text(json.dumps(spec_dict))
    if kill_at or spec_dict["method"] == "aligned_lora":  # the runner registers aligned_lora
        args = [sys.executable, "-c", KILLER, str(path), str(kill_at or 0)]
    else:
        args = [sys.executable, "-m", "pkt.train", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, capture_output=True, text=True, env=env)


def test_registry_names_unknown_methods_and_settings():
    assert get_method("lora").name == "lora"
    with pytest.raises(KeyError, match="nope"):
        get_method("nope")
    with pytest.raises(ValueError, match="rank"):
        get_method("lora").from_dict({"rank": 4})
    assert LoraSettings().r == 16


def test_loss_only_on_response_tokens(student):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(student / "model")
    rec = {"messages": [{"role": "user", "content": "What pet does Vorla have?"},
                        {"role": "assistant", "content": "owl"}]}
    enc = encode_supervised(rec, tok, max_length=64)
    scored = [i for i, label in zip(enc["input_ids"], enc["labels"]) if label != -100]
    assert tok.decode(scored) == "owl" + tok.eos_token
    assert encode_supervised(rec, tok, max_length=4) is None  # no room for the prompt: dropped, never cut


def checkpoints(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("run-*/checkpoint-*"))


def test_killed_run_resumes_from_checkpoint_and_matches_uninterrupted(student, tmp_path):
    straight = run(spec(student, tmp_path / "a", tmp_path / "ck-a"), tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed = run(spec(student, tmp_path / "b", tmp_path / "ck-b"), tmp_path, kill_at=6)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "b").exists()  # nothing half-written where the output goes
    assert checkpoints(tmp_path / "ck-b") == ["checkpoint-4"]
    (complete,) = (tmp_path / "ck-b").glob("run-*/checkpoint-4")
    assert (complete / COMPLETE).is_file()
    half = complete.parent / "checkpoint-8"  # a save killed half-way: weights, no optimiser state, no marker
    half.mkdir()
    (half / "adapter_model.safetensors").write_bytes(b"\0" * 10)

    resumed = run(spec(student, tmp_path / "b", tmp_path / "ck-b"), tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    figures = json.loads((tmp_path / "b" / "training.json").read_text())
    assert figures["resumed_from"] == "checkpoint-4" and figures["steps"] == 12
    whole = json.loads((tmp_path / "a" / "training.json").read_text())
    assert figures["tokens"] == whole["tokens"]  # every step's tokens, not the 8 steps after the resume
    assert figures["mean_loss"] == pytest.approx(whole["mean_loss"], rel=1e-5)
    a = load_file(tmp_path / "a" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "ck-b").exists()  # checkpoints removed after success (keep_checkpoints false)


def test_a_resumed_runs_figures_cover_the_whole_run(student, tmp_path):
    """A kill after the align phase and 4 steps, then a resume: training.json reports the align phase the first
    process ran and the mean loss and tokens of all 12 steps, as the uninterrupted run does (the checkpoint
    carries them: pkt.train.PROGRESS), not None and the 8 steps after the resume."""
    from pkt.train import PROGRESS

    straight = run(spec(student, tmp_path / "a", tmp_path / "ck-a", method="aligned_lora"), tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = run(spec(student, tmp_path / "b", tmp_path / "ck-b", method="aligned_lora"), tmp_path, kill_at=6)
    assert killed.returncode == -signal.SIGKILL
    (carried,) = (tmp_path / "ck-b").glob(f"run-*/checkpoint-4/{PROGRESS}")
    assert json.loads(carried.read_text())["step"] == 4
    resumed = run(spec(student, tmp_path / "b", tmp_path / "ck-b", method="aligned_lora"), tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = (json.loads((tmp_path / d / "training.json").read_text()) for d in ("a", "b"))
    assert b["resumed_from"] == "checkpoint-4" and a["resumed_from"] is None and a["steps"] == b["steps"] == 12
    assert a["align_phase"]["steps"] == 2 and len(a["align_phase"]["losses"]) == 2
    assert {**b["align_phase"], "losses": None} == {**a["align_phase"], "losses": None}
    assert b["align_phase"]["losses"] == pytest.approx(a["align_phase"]["losses"])
    assert b["tokens"] == a["tokens"] > 0
    assert b["mean_loss"] == pytest.approx(a["mean_loss"], rel=1e-5)
    assert b["mean_loss"] != pytest.approx(sum(loss for _, loss in b["loss_curve"][4:]) / 8, rel=1e-3)  # not 5-12's
    assert [s for s, _ in b["loss_curve"]] == [s for s, _ in a["loss_curve"]] == list(range(1, 13))
    assert [x for _, x in b["loss_curve"]] == pytest.approx([x for _, x in a["loss_curve"]], rel=1e-4)


def test_a_changed_config_after_a_kill_trains_afresh(student, tmp_path):
    """A kill, a config edit, a rerun: the old run's optimiser and schedule are never restored."""
    killed = run(spec(student, tmp_path / "out", tmp_path / "ck"), tmp_path, kill_at=6)
    assert killed.returncode == -signal.SIGKILL and checkpoints(tmp_path / "ck") == ["checkpoint-4"]
    (old,) = (tmp_path / "ck").glob("run-*")
    changed = run(spec(student, tmp_path / "out", tmp_path / "ck", lr=2e-3, keep_checkpoints=True), tmp_path)
    assert changed.returncode == 0, changed.stderr[-3000:]
    figures = json.loads((tmp_path / "out" / "training.json").read_text())
    assert figures["resumed_from"] is None and figures["steps"] == 12
    assert not old.exists() and figures["run_key"] != old.name.removeprefix("run-")


def key_of(student: Path, code=(), runtime=None) -> str:
    from pkt.checkpoints import run_key

    return run_key("lora", {"r": 4}, {"lr": 1e-3}, 3, student / "model", student / "train.jsonl", None, code, runtime)


def test_the_run_key_changes_with_the_device_its_dtype_and_the_process_count(student):
    """A requeue that lands on another device kind (device: auto), or a job given another GPU count (torchrun's
    processes multiply the effective batch), must not resume the other run's optimiser and schedule."""
    from types import SimpleNamespace

    from pkt.train import runtime

    def args(processes, gpus):
        return SimpleNamespace(world_size=processes, n_gpu=gpus)

    cpu, gpu = runtime("cpu", args(1, 0)), runtime("cuda:0", args(1, 1))
    assert cpu == {"device": "cpu", "dtype": "float32", "processes": 1, "gpus_per_process": 0}
    assert gpu == {"device": "cuda", "dtype": "bfloat16", "processes": 1, "gpus_per_process": 1}
    runs = [cpu, gpu, runtime("cpu", args(2, 0)), runtime("cuda", args(4, 1)), runtime("cuda", args(1, 2))]
    assert len({key_of(student, runtime=r) for r in runs}) == len(runs)
    assert key_of(student, runtime=gpu) == key_of(student, runtime=runtime("cuda:1", args(1, 1)))  # any one GPU


def test_the_run_key_changes_with_every_library_file_the_methods_training_imports(student, tmp_path):
    """An edit to a helper a method imports from elsewhere (SemAlign's targets for FitNet, layers/importance.py,
    models/build.py for every method) gives another key; a file no training imports does not."""
    import shutil

    from pkt.methods import BUILTIN
    from pkt.sources import SRC
    from pkt.train import training_code

    lib = tmp_path / "src"
    shutil.copytree(SRC / "pkt", lib / "pkt", ignore=shutil.ignore_patterns("__pycache__"))

    def keys(src=lib):
        return {m: key_of(student, code=training_code(m, src=src)) for m in BUILTIN}

    before = keys()
    assert before == keys(SRC) and len(set(before.values())) == len(BUILTIN)  # a copy hashes as the library does
    edits = {
        "pkt/methods/semalign/targets.py": {"semalign", "fitnet"},
        "pkt/methods/semalign/store.py": {"semalign", "fitnet", "kd"},
        "pkt/layers/importance.py": {"semalign", "fitnet", "kd", "laten"},
        "pkt/models/build.py": set(BUILTIN),
        "pkt/report/tables.py": set(),
    }
    for path, methods in edits.items():
        with open(lib / path, "a") as f:
            f.write("\n# an edit\n")
        after = keys()
        assert {m for m in BUILTIN if after[m] != before[m]} == methods, path
        before = after


def test_a_finished_run_is_never_resumed(student, tmp_path):
    """keep_checkpoints: a rerun of a finished run trains all its steps again instead of re-saving the
    old adapter after zero steps."""
    for _ in range(2):
        proc = run(spec(student, tmp_path / "out", tmp_path / "ck", keep_checkpoints=True), tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        figures = json.loads((tmp_path / "out" / "training.json").read_text())
        assert figures["resumed_from"] is None and figures["steps"] == 12
        assert len(figures["loss_curve"]) == 12  # every step ran (logging_steps 1)
        assert (next((tmp_path / "ck").glob("run-*")) / FINISHED).is_file()


def test_reported_figures_are_measured_not_estimated(student, tmp_path):
    """final_loss is the last logged loss; tokens_per_s counts the tokens this run trained on (with
    max_steps a fraction of an epoch: not the whole split times the ceiling of the epoch count)."""
    from transformers import AutoTokenizer

    proc = run(spec(student, tmp_path / "out", tmp_path / "ck", max_steps=2, batch_size=4), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads((tmp_path / "out" / "training.json").read_text())
    assert figures["final_loss"] == figures["loss_curve"][-1][1] != figures["mean_loss"]
    tok = AutoTokenizer.from_pretrained(student / "model")
    from pkt.data.records import load_split

    lengths = sorted(len(encode_supervised(r, tok, 256)["input_ids"]) for r in load_split(student / "train.jsonl"))
    assert len(lengths) == 16  # 2 steps x 4 examples = 8 of them
    assert sum(lengths[:8]) <= figures["tokens"] <= sum(lengths[-8:])
    assert figures["tokens_per_s"] == pytest.approx(figures["tokens"] / figures["wall_s"], rel=0.05)


def test_lora_starts_as_the_student(student):
    """Standard LoRA init (B = 0): the wrapped student's logits equal the plain student's at step 0."""
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(student / "model").eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    ref = base(input_ids=ids).logits
    wrapped = get_method("lora").from_dict({"r": 4}).init_adapter(base, None).eval()
    torch.testing.assert_close(wrapped(input_ids=ids).logits, ref)


def test_runs_under_torchrun_with_two_processes(student, tmp_path, monkeypatch):
    """pkt.train.launch, as a job given two GPUs runs it: two CPU processes (gloo), one adapter from rank 0."""
    from pkt.train import launch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    launch(spec(student, tmp_path / "ddp", tmp_path / "ck", max_steps=4), 2, tmp_path)
    assert not list(tmp_path.glob("train-spec-*.json"))  # the spec file is cleaned up
    figures = json.loads((tmp_path / "ddp" / "training.json").read_text())
    assert figures["world_size"] == 2 and figures["steps"] == 4
    alone = run(spec(student, tmp_path / "one", tmp_path / "ck", max_steps=4), tmp_path)
    assert alone.returncode == 0, alone.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "training.json").read_text())
    assert one["world_size"] == 1 and one["run_key"] != figures["run_key"]  # twice the batch: another run


@pytest.mark.parametrize("micro_batches", [4, 1])
def test_the_aux_loss_is_weighted_by_the_steps_micro_batch_count(monkeypatch, micro_batches):
    """With 4-step accumulation, an epoch's last optimizer step may hold 1 micro-batch: its aux term (a mean
    per micro-batch) then counts fully, as the supervised loss (normalised by num_items_in_batch) does."""
    from types import SimpleNamespace

    from transformers import Trainer

    from pkt.train import make_trainer_class

    monkeypatch.setattr(Trainer, "compute_loss", lambda self, model, inputs, return_outputs=False,
                        num_items_in_batch=None: (torch.tensor(0.0), None))
    trainer = object.__new__(make_trainer_class())
    trainer.method = SimpleNamespace(extra_keys=(), supervised_weight=1.0,
                                     aux_loss=lambda model, inputs, outputs: torch.tensor(1.0))
    trainer.args = SimpleNamespace(gradient_accumulation_steps=4)
    trainer.current_gradient_accumulation_steps = micro_batches
    trainer.tokens_seen = 0
    model = SimpleNamespace(training=True)
    loss = trainer.compute_loss(model, {"attention_mask": torch.ones(1, 3)}, num_items_in_batch=12)
    assert float(loss) == pytest.approx(1.0 / micro_batches)


def test_report_to_tensorboard_writes_event_files_offline(student, tmp_path):
    """train.report_to: tensorboard logs the loss to logging_dir (outside the checkpoints, which are deleted)."""
    logs = tmp_path / "tb"
    proc = run({**spec(student, tmp_path / "out", tmp_path / "ck", max_steps=2, report_to="tensorboard"),
                "logging_dir": str(logs)}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = list(logs.rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    assert json.loads((tmp_path / "out" / "training.json").read_text())["settings"]["report_to"] == "tensorboard"
    assert not (tmp_path / "ck").exists()  # the logs survive the checkpoints
