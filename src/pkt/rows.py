"""What a table row is: a method's label and inputs, read from its class's source, and rows with settings fixed.

A method declares, as literal class attributes beside its ``name``, its table row's ``label`` and the inputs it
``needs`` from the workflow (:data:`INPUTS`: what the DAG knows how to make). The workflow plans from them at
every parse and the tables name rows with them, neither of which may import the method (torch alone costs
1.5 s): :func:`method_spec` reads them from the module's source (``ast``), and :func:`pkt.methods.register`
refuses a class whose attributes differ from what is read here, so the class stays their one place.

``semalign_<map>`` is SemAlign with that coefficient rule (:data:`pkt.methods.semalign.bases.MAPS`), so both
maps can sit in one table as rows of their own. :mod:`pkt.config_settings` resolves a row's settings,
:mod:`pkt.methods.base` its method and module. A root helper (no import of its own), so that editing the
config checks does not touch the code every training job declares.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

METHODS = Path(__file__).resolve().parent / "methods"  # pkt.methods: a module or a package (``method``) each
BUILTIN = ("lora", "seeking", "semalign", "laten", "kd", "fitnet")  # in the tables' row order
# The inputs a method may need (``Method.needs``), each made by the workflow (common.smk's METHOD_INPUTS):
# teacher_targets' folder, extract_seeking's folder, the teacher's model folder, the task's align/extract split.
INPUTS = ("targets", "extract", "teacher", "align_split", "extract_split")
DECLARED = ("name", "label", "needs")  # the class attributes read from the source
PACKAGED = "method"  # the module of a method that is a package (its steps beside it)

# Rows that run a built-in method with settings fixed (:func:`fixed_row`): ``semalign_<map>`` is SemAlign with that
# coefficient rule (pkt.methods.semalign.bases.MAPS), so both maps can sit in one table; pkt.methods.base resolves
# the row's method and module.
FIXED: dict[str, tuple[str, dict[str, Any]]] = {f"semalign_{kind}": ("semalign", {"map": kind})
                                               for kind in ("logit", "cosine")}
TRANSFER = "seeking_from_"  # seeking_from_<task>: Seeking with the factors extracted from <task>'s seeds
# Seeking's ablations (its website's bar charts): ``seeking_<setting>_<variant>`` is Seeking with the factors
# extracted with one ``seeking`` switch changed (pkt.methods.seeking.extract.ExtractSettings). The full method
# (sensitivity layers, the sub-matrix, all modules) is the ``seeking`` row itself; "neuron", a structure the paper
# names but neither it nor its code defines, has no row. {setting: its variants, in the published charts' order}.
ABLATIONS: dict[str, tuple[str, ...]] = {
    "layers": ("random", "first", "last"),
    "structure": ("random", "rowcol"),
    "modules": ("embedding", "ffn", "attention"),
}
FULL = {"layers": "sensitivity", "structure": "submatrix", "modules": "all"}  # the seeking row's value of each


def transfer_source(row: str) -> str | None:
    """The task a ``seeking_from_<task>`` row's factors are extracted from; None for any other row."""
    return row[len(TRANSFER):] if row.startswith(TRANSFER) and len(row) > len(TRANSFER) else None


def ablation_row(setting: str, variant: str) -> str:
    """The row of one of Seeking's ablations: ``seeking_<setting>_<variant>``."""
    return f"seeking_{setting}_{variant}"


def ablation_of(row: str) -> tuple[str, str] | None:
    """(setting, variant) of an ablation row (:data:`ABLATIONS`); None for any other row."""
    for setting, variants in ABLATIONS.items():
        for variant in variants:
            if row == ablation_row(setting, variant):
                return setting, variant
    return None


def ablation_rows(settings: list[str]) -> list[str]:
    """The rows of the ablations of ``settings`` (``seeking.ablation``), in :data:`ABLATIONS`' order."""
    return [ablation_row(s, v) for s, variants in ABLATIONS.items() if s in settings for v in variants]


def extract_overrides(row: str) -> dict[str, Any]:
    """What an ablation row changes in the ``seeking`` section's extraction (``{}`` for any other row): one
    switch, the modules as a one-group list."""
    found = ablation_of(row)
    if found is None:
        return {}
    setting, variant = found
    return {setting: [variant] if setting == "modules" else variant}


def fixed_row(name: str) -> tuple[str, dict[str, Any]] | None:
    """(method, settings fixed over its config section) of a row that runs a built-in method with settings fixed:
    :data:`FIXED`'s, and Seeking's transfer and ablation rows (its training settings unchanged: what differs is
    the factors it starts from); None for any other name."""
    if name in FIXED:
        return FIXED[name]
    if isinstance(name, str) and (transfer_source(name) or ablation_of(name)):
        return "seeking", {}
    return None


def method_of(row: str) -> str:
    """The method a row runs: its own name, or a fixed row's method (whose training recipe it follows)."""
    fixed = fixed_row(row)
    return fixed[0] if fixed else row


@dataclass(frozen=True)
class MethodSpec:
    """What the workflow and the tables know of a method without importing it."""

    name: str
    label: str  # the table row's name ("" in the class: the name)
    needs: tuple[str, ...]  # of INPUTS, in the order the training job gets them
    path: Path  # the module's source file


def method_file(name: str, folder: Path = METHODS) -> Path | None:
    """The module of method ``name``: ``<folder>/<name>.py``, or ``method.py`` of the package ``<folder>/<name>``."""
    for path in (folder / f"{name}.py", folder / name / f"{PACKAGED}.py"):
        if path.is_file():
            return path
    return None


def _is_register(decorator: ast.expr) -> bool:
    return (isinstance(decorator, ast.Name) and decorator.id == "register") or (
        isinstance(decorator, ast.Attribute) and decorator.attr == "register")


def _declared(node: ast.ClassDef, path: Path) -> dict[str, Any]:
    """The :data:`DECLARED` attributes assigned in a class's own body (not inherited), as literals."""
    found: dict[str, Any] = {}
    for stmt in node.body:
        target, value = None, None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        if isinstance(target, ast.Name) and target.id in DECLARED:
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                raise ValueError(f"{path}:{stmt.lineno}: {node.name}.{target.id} must be a literal (the workflow "
                                 "reads it from the source, without importing the module)") from None
    return found


def spec_of(name: str, declared: dict[str, Any], path: Path) -> MethodSpec:
    """A method's spec from its declared attributes, ``needs`` checked against :data:`INPUTS`."""
    label, needs = declared.get("label", ""), declared.get("needs", ())
    if not isinstance(label, str) or not isinstance(needs, (tuple, list)):
        raise ValueError(f"{path}: method {name!r}: label must be a string and needs a tuple of input names")
    unknown = [n for n in needs if n not in INPUTS]
    if unknown:
        raise ValueError(f"{path}: method {name!r} needs {unknown}, which the workflow does not make; it makes "
                         f"{', '.join(INPUTS)}")
    return MethodSpec(name, label or name, tuple(needs), path)


@cache
def _registered(path: Path, mtime_ns: int) -> dict[str, MethodSpec]:
    tree = ast.parse(path.read_text(), filename=str(path))
    specs = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(_is_register(d) for d in node.decorator_list):
            declared = _declared(node, path)
            if not isinstance(declared.get("name"), str) or not declared["name"]:
                raise ValueError(f"{path}:{node.lineno}: {node.name} is registered but sets no literal name")
            specs[declared["name"]] = spec_of(declared["name"], declared, path)
    return specs


def registered_in(path: Path) -> dict[str, MethodSpec]:
    """{name: spec} of every class a module's source registers (``@register``), read without running it."""
    return _registered(path, path.stat().st_mtime_ns)


def method_spec(name: str, folder: Path = METHODS) -> MethodSpec:
    """The spec of method ``name``, or of a fixed row (:func:`fixed_row`: its method's, labelled with the fixed
    settings: "SemAlign (cosine map)", "Seeking (extracted from seeking_gsm)", "Seeking (layers: random)")."""
    fixed = fixed_row(name)
    if fixed is not None:
        base, settings = fixed
        spec = method_spec(base, folder)
        shown = ", ".join(f"{value} {key}" for key, value in settings.items())
        if transfer_source(name):
            shown = f"extracted from {transfer_source(name)}"
        elif ablation_of(name):
            shown = "{}: {}".format(*ablation_of(name))
        return MethodSpec(name, f"{spec.label} ({shown})", spec.needs, spec.path)
    path = method_file(name, folder)
    if path is None:
        raise KeyError(f"unknown method {name!r}: neither built in ({', '.join(BUILTIN)}) nor a module "
                       f"src/pkt/methods/{name}.py (README: Add a method)")
    specs = registered_in(path)
    if name not in specs:
        raise KeyError(f"{path} registers no method named {name!r} (it registers: {sorted(specs) or 'none'})")
    return specs[name]


def new_methods(folder: Path = METHODS) -> list[str]:
    """Names of the methods in ``folder`` that are not built in (a researcher's own), sorted: every module or
    package ``method`` whose source registers a method under its file's name."""
    names = []
    for path in sorted([*folder.glob("*.py"), *folder.glob(f"*/{PACKAGED}.py")]):
        name = path.parent.name if path.parent != folder else path.stem
        if name not in BUILTIN and not name.startswith("_") and name in registered_in(path):
            names.append(name)
    return names


def row_labels(folder: Path = METHODS) -> dict[str, str]:
    """{row: label} of every method row in the tables' order: the built-in methods, each followed by its
    :data:`FIXED` rows, then the new ones."""
    labels = {}
    for name in (*BUILTIN, *new_methods(folder)):
        labels[name] = method_spec(name, folder).label
        labels.update({row: method_spec(row, folder).label for row, (base, _) in FIXED.items() if base == name})
    return labels
