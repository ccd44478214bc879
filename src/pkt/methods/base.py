"""What a transfer method is, and the registry that finds one by name (peft style).

A method is a small class with a config dataclass, an ``init_adapter`` hook that wraps the student in
a peft model (standard LoRA, or LoRA initialised from extracted teacher weights), an optional
``aux_loss`` added to the supervised loss at every step (SemAlign's alignment term), and
``export_adapter``, which saves a plain peft adapter for the vanilla student whatever the method did to
the base weights during training. ``pkt.train``
is the one trainer for all of them.

What the workflow needs of a method are literal class attributes beside its ``name``: its table row's ``label``
and the inputs it ``needs`` (:data:`pkt.rows.INPUTS`), which :mod:`pkt.rows` reads from the source without
importing it (:func:`register` checks the two agree). A method that is not built in is a module
``pkt.methods.<name>`` (or a package's ``method``), found by its name (README "Add a method").
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pkt.rows import BUILTIN, INPUTS, method_file, method_of, registered_in

REGISTRY: dict[str, type[Method]] = {}


def base_method(name: str) -> str:
    """The built-in method a row runs: ``name`` itself, or the method of a fixed row (:func:`pkt.rows.fixed_row`)."""
    return method_of(name)


@dataclass
class LoraSettings:
    """LoRA hyperparameters shared by every method (Seeking 1.5/1.7: r 16, alpha 16, dropout 0.05)."""

    r: int = 16
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                                 "embed_tokens", "lm_head"]
    )
    layers: list[int] | None = None  # 0-indexed decoder layers to adapt; None = all

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), layers_to_transform=self.layers,
                          bias="none", task_type="CAUSAL_LM")


class Method:
    """Base class: standard LoRA, no auxiliary loss. Subclasses override the hooks they need."""

    name: ClassVar[str] = ""
    # Read from the source by the workflow (pkt.rows.method_spec), so literals in the registered class's own body:
    label: ClassVar[str] = ""  # the table row's name (pkt.report.tables.ROWS); "" = the name
    needs: ClassVar[tuple[str, ...]] = ()  # the workflow's inputs it reads from self.inputs (pkt.rows.INPUTS)
    config_class: ClassVar[type] = LoraSettings
    extra_keys: ClassVar[tuple[str, ...]] = ()  # batch fields for aux_loss, kept from the model (example_index)

    def __init__(self, config: Any, inputs: dict[str, Path] | None = None) -> None:
        self.config = config
        self.inputs = inputs or {}

    @classmethod
    def from_dict(cls, settings: dict[str, Any], inputs: dict[str, Path] | None = None) -> Method:
        """Build from a config section, naming any unknown key."""
        names = {f.name for f in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise ValueError(f"method {cls.name!r}: unknown setting(s) {unknown}; known: {sorted(names)}")
        return cls(cls.config_class(**settings), inputs)

    def lora(self) -> LoraSettings:
        return self.config

    def init_adapter(self, model, tokenizer):
        """Wrap the student in a trainable peft model. Standard init: A Kaiming, B zero."""
        from peft import get_peft_model

        return get_peft_model(model, self.lora().peft_config())

    def export_adapter(self, model, out_dir: Path) -> None:
        """Write the trained adapter so that peft loads it on the *vanilla* student (evaluation's path).

        Only the LoRA factors: peft would otherwise also save the full embedding and LM head whenever they
        are LoRA targets (500 MB per adapter for Llama-2-7B), which the vanilla student already has.
        """
        model.save_pretrained(str(out_dir), save_embedding_layers=False)

    @property
    def supervised_weight(self) -> float:
        """The weight of the usual cross-entropy on response tokens in the training loss."""
        return 1.0

    def align_phase(self) -> dict[str, Any] | None:
        """A short phase before training, {"split", "steps", "lr"} (SemAlign v1's alignment), or None."""
        return None

    def begin_align(self) -> None:
        """Called before the align phase (switch the loss to it)."""

    def end_align(self) -> None:
        """Called after the align phase."""

    def fit(self, student_dir: Path, train_split: Path, out_dir: Path, seed: int, device: str,
            max_length: int) -> dict[str, Any] | None:
        """A method that does not fine-tune the student (LaTen: no post-training) builds its adapter here,
        writes it to ``out_dir`` (atomically) and returns its figures; None = train with the Trainer."""
        return None

    def callbacks(self) -> list[Any]:
        """``TrainerCallback``s the method needs (a training schedule), none by default."""
        return []

    def aux_loss(self, model, inputs: dict[str, Any], outputs: Any):
        """An extra loss term for this step, or None. ``inputs`` includes the ``extra_keys`` fields."""
        return None


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available to ``pkt.train`` under ``cls.name``.

    A class of a ``pkt.methods`` module must carry the ``label`` and ``needs`` that :mod:`pkt.rows` reads from its
    source, where the workflow gets them: one inherited, or computed, would differ, and is refused here.
    """
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    unknown = [n for n in cls.needs if n not in INPUTS]
    if unknown:
        raise ValueError(f"method {cls.name!r} needs {unknown}, which the workflow does not make ({INPUTS})")
    module = sys.modules.get(cls.__module__)
    if cls.__module__.startswith("pkt.methods.") and getattr(module, "__file__", None):
        read = registered_in(Path(module.__file__)).get(cls.name)
        if read is None or (read.label, read.needs) != (cls.label or cls.name, tuple(cls.needs)):
            raise ValueError(f"method {cls.name!r}: label {cls.label!r} and needs {cls.needs!r} must be literals in "
                             f"the body of {cls.__name__}, where the workflow reads them without importing it "
                             f"(read: {read})")
    REGISTRY[cls.name] = cls
    return cls


def method_module(name: str) -> str:
    """The module that registers method ``name`` (or a fixed row's method: :func:`pkt.rows.fixed_row`):
    ``pkt.methods.<name>``, or ``.method`` of its package; built in or not (:func:`pkt.rows.method_file`)."""
    name = base_method(name)
    path = method_file(name)
    if path is None:
        raise KeyError(f"unknown method {name!r}; built in: {sorted(BUILTIN)}, or a module src/pkt/methods/"
                       f"{name}.py (README: Add a method)")
    return f"pkt.methods.{name}" if path.name == f"{name}.py" else f"pkt.methods.{name}.{path.stem}"


def get_method(name: str) -> type[Method]:
    """The class registered as ``name`` (a fixed row: its method's), importing its module first (built in,
    or ``pkt.methods.<name>``)."""
    name = base_method(name)
    if name not in REGISTRY and method_file(name) is not None:
        importlib.import_module(method_module(name))
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; registered: {sorted(set(REGISTRY) | set(BUILTIN))}")
    return REGISTRY[name]
