"""What a table row is: a method's label and inputs, read from its class's source, and rows with settings fixed.

A method declares, as literal class attributes beside its ``name``, its table row's ``label`` and the inputs it
``needs`` from the workflow (:data:`INPUTS`: what the DAG knows how to make). The workflow plans from them at
every parse and the tables name rows with them, neither of which may import the method (torch alone costs
1.5 s): :func:`method_spec` reads them from the module's source (``ast``), and :func:`pkt.methods.register`
refuses a class whose attributes differ from what is read here, so the class stays their one place.

``semalign_<map>`` is SemAlign with that coefficient rule (:data:`pkt.methods.semalign.bases.MAPS`), so both
maps can sit in one table as rows of their own. :mod:`pkt.config_checks` resolves a row's settings,
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

# Rows that run a built-in method with settings fixed over its config section: {row: (method, settings)}.
# ``semalign_<map>`` is SemAlign with that coefficient rule (pkt.methods.semalign.bases.MAPS), so both maps can
# sit in one table; pkt.methods.base resolves the row's method and module.
TRANSFER = "seeking_from_"  # seeking_from_<task>: Seeking with the factors extracted from <task>'s seeds


class FixedRows(dict):
    """{row: (method, settings)}, plus ``seeking_from_<task>``: Seeking trained on each task from the factors
    extracted from ``<task>`` (its task-transfer table), for any task, so the rows need not be listed."""

    def __missing__(self, row: str) -> tuple[str, dict[str, Any]]:
        if isinstance(row, str) and row.startswith(TRANSFER) and len(row) > len(TRANSFER):
            return "seeking", {}
        raise KeyError(row)

    def __contains__(self, row: object) -> bool:
        return super().__contains__(row) or (isinstance(row, str) and row.startswith(TRANSFER)
                                             and len(row) > len(TRANSFER))


def transfer_source(row: str) -> str | None:
    """The task a ``seeking_from_<task>`` row's factors are extracted from; None for any other row."""
    return row[len(TRANSFER):] if row.startswith(TRANSFER) and len(row) > len(TRANSFER) else None


FIXED: dict[str, tuple[str, dict[str, Any]]] = FixedRows(
    {f"semalign_{kind}": ("semalign", {"map": kind}) for kind in ("logit", "cosine")}
)


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
    """The spec of method ``name``, or of a :data:`FIXED` row (its method's, labelled with the fixed settings:
    "SemAlign (cosine map)")."""
    if name in FIXED:
        base, fixed = FIXED[name]
        spec = method_spec(base, folder)
        settings = ", ".join(f"{value} {key}" for key, value in fixed.items())
        if transfer_source(name):
            settings = f"extracted from {transfer_source(name)}"
        return MethodSpec(name, f"{spec.label} ({settings})", spec.needs, spec.path)
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
