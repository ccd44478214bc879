"""A new method's config section, derived from its settings dataclass rather than typed into the schema.

The built-in methods' sections are written out in ``workflow/schemas/config.schema.yaml``, with descriptions. A
method added as a module ``src/pkt/methods/<name>.py`` (README "Add a method") gets its section ``<name>:`` from
its ``config_class``: the fields it adds to :class:`LoraSettings` (the ``lora`` section fills those, as for
``kd``), each typed by its annotation and defaulted by the dataclass, and no other key. :func:`schema_file`
hands the workflow the schema with that section and the method's name added where the schema lists methods
(``methods``, ``train.per_method``), so :func:`pkt.config_schema.check_schema` reports a wrong key or type in
one line (``<name>.<key>: ...``) and Snakemake's ``validate`` fills in the defaults. Not imported by
``pkt.methods``; the workflow imports it at parse time (``yaml`` and the method's own module).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import tempfile
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pkt.methods.base import LoraSettings, get_method
from pkt.rows import BUILTIN, fixed_row, method_file, registered_in

SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def type_schema(tp: Any, where: str) -> dict[str, Any]:
    """The JSON schema of one annotation: bool, int, float, str, Literal[...], list[X], dict[str, X], X | None."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in SCALARS:
        return {"type": SCALARS[tp]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is list and len(args) == 1:
        return {"type": "array", "items": type_schema(args[0], where)}
    if origin is dict and len(args) == 2 and args[0] is str:
        return {"type": "object", "additionalProperties": type_schema(args[1], where)}
    if origin in (typing.Union, types.UnionType) and type(None) in args and len(args) == 2:
        inner = type_schema(next(a for a in args if a is not type(None)), where)
        if "type" in inner:
            return {**inner, "type": [inner["type"], "null"]}
        return {**inner, "enum": [*inner["enum"], None]}
    raise TypeError(f"{where}: type {tp!r} has no config form; use bool, int, float, str, Literal[...], list[X], "
                    "dict[str, X] or X | None")


def section_schema(name: str, config_class: type) -> dict[str, Any]:
    """The schema of method ``name``'s section: the fields ``config_class`` adds to :class:`LoraSettings`."""
    if not (dataclasses.is_dataclass(config_class) and issubclass(config_class, LoraSettings)):
        raise TypeError(f"method {name!r}: config_class {config_class.__name__} must be a dataclass extending "
                        "LoraSettings (the lora section fills those fields, the method's section its own)")
    hints = typing.get_type_hints(config_class)
    inherited = {f.name for f in dataclasses.fields(LoraSettings)}
    properties, required = {}, []
    for f in dataclasses.fields(config_class):
        if f.name in inherited:
            continue
        prop = type_schema(hints[f.name], f"{config_class.__name__}.{f.name}")
        if f.default is not dataclasses.MISSING:
            prop["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            prop["default"] = f.default_factory()
        else:
            required.append(f.name)
        properties[f.name] = prop
    doc = (config_class.__doc__ or "").strip().splitlines()
    return {"type": "object", "additionalProperties": False, "default": {}, "properties": properties,
            **({"required": required} if required else {}),
            "description": f"Method {name} ({config_class.__module__}.{config_class.__name__}, derived from its "
                           f"fields){': ' + doc[0] if doc else ''}"}


def is_new(name: Any) -> bool:
    """Whether ``name`` is a method that is not built in: a ``pkt.methods`` module registering it."""
    if not isinstance(name, str) or name in BUILTIN or fixed_row(name):
        return False
    path = method_file(name)
    return path is not None and name in registered_in(path)


def new_methods_of(config: dict[str, Any]) -> list[str]:
    """The new methods a config names, in ``methods`` or as a top-level section (allowed, as the built-ins' are,
    when the method does not run)."""
    listed = config.get("methods")
    return list(dict.fromkeys(n for n in [*(listed if isinstance(listed, list) else []), *config] if is_new(n)))


def with_methods(schema: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``schema`` with each new method's section (:func:`section_schema`), and its name among the methods."""
    schema = copy.deepcopy(schema)
    props = schema["properties"]
    for name in names:
        if name in props:
            raise ValueError(f"method {name!r} is named like the config's own section {name}: rename its module")
        props[name] = section_schema(name, get_method(name).config_class)
        props["methods"]["items"]["enum"].append(name)
        props["train"]["properties"]["per_method"]["propertyNames"]["enum"].append(name)
    return schema


@contextmanager
def schema_file(path: str | os.PathLike[str], config: dict[str, Any]) -> Iterator[str]:
    """The config schema to check ``config`` against: ``path`` itself, or, where the config has a new method, a
    temporary copy with :func:`with_methods` applied (Snakemake's ``validate`` reads a schema from a file only)."""
    import yaml

    names = new_methods_of(config)
    if not names:
        yield os.fspath(path)
        return
    with open(path) as f:
        schema = yaml.safe_load(f)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="config.schema.") as tmp:
        json.dump(with_methods(schema, names), tmp)
        tmp.flush()
        yield tmp.name
