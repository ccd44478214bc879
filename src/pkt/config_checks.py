"""Checks of the config that a JSON schema cannot express, run before the DAG is built.

The schema catches unknown keys, types and ranges; these catch cross-references: a pair naming a
model that does not exist, a teacher and student with different tokenizers, a head count that does
not divide the width, a comparison table against a row that will not exist. Each message names the
offending key. Kept free of Snakemake and torch so that ``common.smk`` can import it at parse time in
milliseconds.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value that is well-typed but inconsistent with another."""


def config_errors(config: dict[str, Any]) -> list[str]:
    """Every cross-reference problem of a schema-valid config, as messages naming the keys."""
    errors = []
    models = config["models"]
    for name, m in models.items():
        if m["hidden_size"] % m["num_heads"]:
            errors.append(
                f"models.{name}: hidden_size {m['hidden_size']} is not divisible by num_heads {m['num_heads']}"
            )
        if m["pretrain"]["seq_len"] > m.get("max_position_embeddings", 512):
            errors.append(f"models.{name}.pretrain.seq_len exceeds models.{name}.max_position_embeddings")
    for pair, p in config["pairs"].items():
        for role in ("teacher", "student"):
            if p[role] not in models:
                errors.append(f"pairs.{pair}.{role}: no model named {p[role]!r} in models ({sorted(models)})")
        if p["teacher"] in models and p["student"] in models:
            t, s = models[p["teacher"]], models[p["student"]]
            if t["tokenizer"] != s["tokenizer"]:
                errors.append(
                    f"pairs.{pair}: teacher {p['teacher']!r} uses tokenizer {t['tokenizer']!r} but student "
                    f"{p['student']!r} uses {s['tokenizer']!r}; a pair needs one shared vocabulary"
                )
    rows = ["student", "teacher", *config["methods"]]
    reference = config.get("tables", {}).get("reference")
    if reference is not None and reference not in rows:
        errors.append(f"tables.reference: {reference!r} is not a row of the table; choose from {rows}")
    return errors


def check_config(config: dict[str, Any]) -> None:
    """Raise one ConfigError listing every problem found by :func:`config_errors`."""
    errors = config_errors(config)
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))
