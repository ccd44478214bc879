"""SemAlign's ablation (rule ``semalign_ablation``): one switch flipped at a time against the configured run.

The variants, each against the ``semalign`` config section as it is (the SemAlign row of the main table):
the other coefficient rule of the map (logit <-> cosine), the other objective version (v1 <-> v2), the
layer term alone, the output term alone, the other aligned signal (residual contribution <-> layer output),
and interpolation switched (on <-> off; identical
targets, hence identical results, wherever the depth ratio L_T / L_S is integral). To keep the default
run's budget each variant is trained and evaluated on one task (``semalign.ablation.task``, default
toy_mmlu: the held-out facts are the transfer question) with ``semalign.ablation.seeds``; its results are
written in the ``evaluate`` rule's format, so :mod:`pkt.report.tables` builds the table with its intervals.
Each variant is compared with the configured row on the variant's own seeds, paired by seed: a variant that
changes nothing (interpolation at an integral depth ratio) reads exactly +0.00 [+0.00, +0.00] and is marked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pkt.report.noted import add_versus, write_noted_table
from pkt.report.shown import headers, protocol_note
from pkt.report.tables import describe_results, formatted, load_items, load_results, main_table, vs_reference

ON_SEEDS = "semalign-on-ablation-seeds"  # the configured row restricted to the variants' seeds


def variants(semalign: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{slug: {"label", "method": method-setting overrides, "targets": target-setting overrides}}."""
    other_variant = "v2" if semalign["variant"] == "v1" else "v1"
    other_signal = "output" if semalign["signal"] == "delta" else "delta"
    other_map = "cosine" if semalign["map"] == "logit" else "logit"
    signal_names = {"delta": "residual contribution", "output": "layer output"}
    return {
        f"map-{other_map}": {"label": f"{other_map} map", "method": {"map": other_map}, "targets": {}},
        f"variant-{other_variant}": {"label": f"objective {other_variant}", "method": {"variant": other_variant},
                                     "targets": {}},
        "layer-only": {"label": "layer term only", "method": {"output_weight": 0.0}, "targets": {}},
        "output-only": {"label": "output term only", "method": {"layer_weight": 0.0}, "targets": {}},
        f"signal-{other_signal}": {"label": f"signal: {signal_names[other_signal]}", "method": {},
                                   "targets": {"signal": other_signal}},
        "interpolation-" + ("off" if semalign["interpolate"] else "on"): {
            "label": "interpolation " + ("off" if semalign["interpolate"] else "on"), "method": {},
            "targets": {"interpolate": not semalign["interpolate"]}},
    }


def configured_label(semalign: Mapping[str, Any]) -> str:
    signal = "residual contribution" if semalign["signal"] == "delta" else "layer output"
    interp = "interpolation on" if semalign["interpolate"] else "interpolation off"
    return f"as configured ({semalign['map']} map, {semalign['variant']}, {signal}, {interp})"


def ablation_table(configured: Iterable[str | os.PathLike[str]], ablated: Iterable[str | os.PathLike[str]],
                   labels: Mapping[str, str], pairs: dict, n_boot: int, level: float, seed: int) -> pd.DataFrame:
    """Rows: the configured SemAlign (all its seeds), the configured SemAlign on the variants' seeds when those
    are fewer (what the variants are compared with), and each variant; cells 'mean ± std', then per column the
    variant minus the configured row on the variant's own seeds, paired by seed, with its interval
    (``vs_reference(same_seeds=True)``; with one seed it covers test items only), and ``identical_to``: the
    label of the row a variant copies on every item and seed (MARK after its name). ``attrs``: ``note`` (how to
    read the table, which student and protocol, for the caption), ``footnotes`` (why a row is marked) and
    ``headers`` (score column -> its metric and n), for :func:`pkt.report.noted.write_noted_table`."""
    paths = [*configured, *ablated]
    tidy = load_results(paths, pairs)
    on_configured = tidy["row"] == "semalign"
    seeds = sorted(set(tidy.loc[~on_configured, "seed"]))
    if seeds and seeds != sorted(set(tidy.loc[on_configured, "seed"])):
        tidy = pd.concat([tidy, tidy[on_configured & tidy["seed"].isin(seeds)].assign(row=ON_SEEDS)],
                         ignore_index=True)
    labels = {**labels, ON_SEEDS: f"{labels.get('semalign', 'semalign')}, seeds {seeds}"}
    main = main_table(tidy)
    table = formatted(main).drop(columns=["Average", "Gap to teacher"], errors="ignore")
    table.index = main.index.get_level_values("row")
    order = ["semalign", ON_SEEDS, *(r for r in labels if r not in ("semalign", ON_SEEDS))]
    table = table.reindex([r for r in order if r in table.index])
    versus = vs_reference(load_items(paths, pairs), reference="semalign", n_boot=n_boot, level=level, seed=seed,
                          same_seeds=True)
    found = add_versus(table, list(table.index), versus, "vs configured", labels, scope=f"every item of seeds {seeds}")
    note = (f"'vs configured' = variant minus the configured SemAlign on the variant's own seeds ({seeds}), paired "
            f"by seed, with a {level:.0%} interval (* = excludes 0) over test items (resampled by template cluster "
            "where items share one) and, with 2+ seeds, the training seeds of one pretrained pair (t over seeds); "
            "with one seed it covers test items only, not training seeds.")
    info = describe_results(paths, pairs)
    students = sorted({info.models[key] for key in info.models if key[1] == "student" and key[0] in set(tidy["pair"])})
    trained = f"Every row is SemAlign trained on the student ({', '.join(students)})." if students else ""
    table = table.reset_index(drop=True)
    table.attrs.update(note=" ".join(n for n in (note, trained, protocol_note(info)) if n),
                       footnotes=[found] if found else [], headers=headers(list(table.columns), info))
    return table


def write_ablation(table: pd.DataFrame, csv: str | os.PathLike[str], md: str | os.PathLike[str],
                   tex: str | os.PathLike[str], caption: str) -> None:
    """The ablation table as CSV, Markdown and LaTeX, atomically, its note after the caption
    (:func:`pkt.report.noted.write_noted_table`)."""
    write_noted_table(table, csv, md, tex, caption, label="tab:semalign-ablation")


def result_path(root: str | os.PathLike[str], slug: str, seed: int) -> Path:
    return Path(root) / slug / f"seed{seed}.json"
