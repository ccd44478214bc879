"""The config's JSON schema, checked with every problem on one line: ``key.path: problem (hint)``.

Snakemake's own ``validate`` stops at the first problem and prints the whole schema and config after it
(2,000+ lines for an unknown key). A user who mistyped three keys needs three lines, each naming the key as
written in the YAML (``train.lr``, not ``schema['properties']['train']...``), with what was expected and,
where a usual slip explains it, a hint: a near spelling for an unknown key, YAML's reading of ``1e-3`` as a
string. :func:`schema_problems` lists them; :func:`check_schema` raises one :class:`ConfigError` with all of
them, before any job. Kept free of Snakemake and torch (``common.smk`` imports it at parse time).
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pkt.config_checks import ConfigError

FLOAT_LIKE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")  # 1e-3: a string to PyYAML (YAML 1.1)


def load_schema(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path) as f:
        return yaml.safe_load(f)


def key_path(error: ValidationError) -> str:
    """The failing value's place as the YAML spells it: ``train.lr``, ``seeds[1]``; ``(top level)`` for the root."""
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _type_names(expected: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join("null" if n == "null" else n for n in names)


def describe(error: ValidationError) -> str:
    """One line for one schema error: what is wrong, what was expected, and a hint where one helps."""
    where, kind, value = key_path(error), error.validator, error.instance
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(value) - set(known)) if isinstance(value, dict) else []
        parts = []
        for key in unknown:
            near = difflib.get_close_matches(key, known, n=1)
            parts.append(f"{where}.{key}: unknown key" if where != "(top level)" else f"{key}: unknown key")
            parts[-1] += f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(known)})"
        return "\n".join(parts)
    if kind == "type":
        line = f"{where}: {value!r} is not of type {_type_names(error.validator_value)}"
        if isinstance(value, str) and FLOAT_LIKE.match(value.strip()):
            fixed = re.sub(r"^([+-]?\d+)(?=[eE])", r"\1.0", value.strip())
            line += f" (YAML reads {value} as a string: write it with a decimal point, {fixed})"
        return line
    if kind == "enum":
        return f"{where}: {value!r} is not one of {', '.join(map(str, error.validator_value))}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return f"{where}: {value!r} is out of range (must be {bound} {error.validator_value})"
    if kind == "required":
        return f"{where}: {error.message}"
    if kind == "anyOf" and all(set(alt) == {"required"} for alt in error.validator_value):
        keys = " or ".join(k for alt in error.validator_value for k in alt["required"])
        return f"{where}: needs {keys}"
    return f"{where}: {error.message}"


def schema_problems(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every schema problem of ``config``, one line each (an unknown key per line), in the config's key order."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    lines: list[str] = []
    for error in errors:
        for line in describe(error).split("\n"):
            if line not in lines:
                lines.append(line)
    return lines


def check_schema(config: dict[str, Any], schema_path: str | os.PathLike[str]) -> None:
    """Raise one :class:`ConfigError` listing every schema problem (none: return, and the caller may fill in the
    schema's defaults with Snakemake's ``validate``)."""
    problems = schema_problems(config, load_schema(schema_path))
    if problems:
        raise ConfigError(f"invalid config ({len(problems)} problem{'s' * (len(problems) > 1)}; keys as in the "
                          "YAML, every key is described in workflow/schemas/config.schema.yaml):\n  "
                          + "\n  ".join(problems))
