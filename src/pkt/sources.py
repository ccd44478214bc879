"""The library files a script or module runs, found from its imports, so that no rule can forget one.

Each rule declares as inputs the ``src/pkt`` files its script imports, transitively, and editing any of them
reruns its jobs (and a resumed training run refuses a checkpoint made by other code, :mod:`pkt.checkpoints`).
The list is computed, never kept by hand: every ``import pkt...`` / ``from pkt... import ...`` anywhere in a
file (inside functions too) counts, with the ``__init__.py`` of every package on the way, which Python runs
too. Two ways of running code without importing it by name are followed as well: a file named by a string
constant beside the module that names it (``Path(__file__).with_name("runner.py")``: the sandbox starts its
runner by path), and a plain ``import name`` that resolves to a file beside the importer (what that runner
does, with its own directory on ``sys.path``). What is chosen at run time by name (a method,
:func:`pkt.methods.method_module`) is added by the caller, as the train rule does.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]  # the folder holding the installed pkt


def module_file(module: str, src: Path = SRC) -> Path | None:
    """The file of a ``pkt`` module under ``src`` (``pkt/a/b.py`` or a package's ``pkt/a/b/__init__.py``)."""
    if module != "pkt" and not module.startswith("pkt."):
        return None
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_packages(module: str) -> list[str]:
    """``pkt.a.b`` -> ``pkt``, ``pkt.a``, ``pkt.a.b``: importing a module runs every package above it."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@cache
def _direct(path: Path, src: Path) -> tuple[Path, ...]:
    """Files one file runs directly: the pkt modules it imports, and siblings it names or imports by path."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Path] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            raise ValueError(f"{path}: relative import (line {node.lineno}); the library imports absolutely")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".py")
              and "/" not in node.value and (sibling := path.with_name(node.value)).is_file()):  # not "*/x.py"
            found.append(sibling)
        for name in names:
            if name.startswith("pkt"):
                found += [f for m in _with_packages(name) if (f := module_file(m, src)) is not None]
            elif "." not in name and (sibling := path.with_name(f"{name}.py")).is_file():
                found.append(sibling)
    return tuple(dict.fromkeys(found))


def library_files(*entries: str | Path, src: str | Path = SRC) -> list[Path]:
    """Every ``pkt`` file under ``src`` that running the entries runs: a script's path or a module's name."""
    src = Path(src).resolve()
    todo: list[Path] = []
    for entry in entries:
        if isinstance(entry, str) and not entry.endswith(".py"):
            if module_file(entry, src) is None:
                raise ValueError(f"no module {entry!r} under {src}")
            todo += [f for m in _with_packages(entry) if (f := module_file(m, src)) is not None]
        else:
            todo.append(Path(entry).resolve())
    seen: dict[Path, None] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen[path] = None
        todo += _direct(path, src)
    return sorted(p for p in seen if p.is_relative_to(src / "pkt"))


def relative_files(*entries: str | Path, root: str | Path) -> list[str]:
    """:func:`library_files` of the checkout at ``root`` (its ``src``), relative to it: a rule's ``input:``."""
    base = Path(root).resolve()
    return [str(p.relative_to(base)) for p in library_files(*entries, src=base / "src")]
