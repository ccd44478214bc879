"""SemAlign's ablation (rule ``semalign_ablation``): one switch flipped at a time against the configured run.

The variants, each against the ``semalign`` config section as it is (the SemAlign row of the main table):
the other objective version (v1 <-> v2), the layer term alone, the output term alone, the other aligned
signal (residual contribution <-> layer output), and interpolation switched (on <-> off; identical
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

from pkt.io import atomic_path, write_text
from pkt.report.tables import (
    MARK,
    formatted,
    identical_note,
    interval,
    latex_caption,
    load_items,
    load_results,
    main_table,
    vs_reference,
)

ON_SEEDS = "semalign-on-ablation-seeds"  # the configured row restricted to the variants' seeds


def variants(semalign: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{slug: {"label", "method": method-setting overrides, "targets": target-setting overrides}}."""
    other_variant = "v2" if semalign["variant"] == "v1" else "v1"
    other_signal = "output" if semalign["signal"] == "delta" else "delta"
    signal_names = {"delta": "residual contribution", "output": "layer output"}
    return {
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
    return f"as configured ({semalign['variant']}, {signal}, {interp})"


def ablation_table(configured: Iterable[str | os.PathLike[str]], ablated: Iterable[str | os.PathLike[str]],
                   labels: Mapping[str, str], pairs: dict, n_boot: int, level: float, seed: int) -> pd.DataFrame:
    """Rows: the configured SemAlign (all its seeds), the configured SemAlign on the variants' seeds when those
    are fewer (what the variants are compared with), and each variant; cells 'mean ± std', then per column the
    variant minus the configured row on the variant's own seeds, paired by seed, with its interval
    (``vs_reference(same_seeds=True)``; with one seed it covers test items only), and ``identical_to``: the
    label of the row a variant copies on every item and seed (MARK after its name). ``attrs["note"]`` says
    how to read the table, for the caption."""
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
    compared = set(versus.index.get_level_values("row")) if not versus.empty else set()
    for column in [c for c in table.columns if c not in ("Model", "Seeds")]:
        table[f"{column} vs configured"] = [
            interval(*(versus.xs(row, level="row")[(s, column)].iloc[0] for s in ("diff", "lo", "hi")))
            if row in compared and ("diff", column) in versus.columns else ""
            for row in table.index
        ]
    copies = {row: versus.xs(row, level="row")[("identical_to", "")].iloc[0] if row in compared else ""
              for row in table.index}
    table["Model"] = [labels.get(r, r) + (f" {MARK}" if copies[r] else "") for r in table.index]
    table["identical_to"] = [labels.get(copies[r], copies[r]) for r in table.index]
    note = (f"'vs configured' = variant minus the configured SemAlign on the variant's own seeds ({seeds}), paired "
            f"by seed, with a {level:.0%} interval (* = excludes 0) over test items (resampled by template cluster "
            "where items share one) and, with 2+ seeds, the training seeds of one pretrained pair (t over seeds); "
            "with one seed it covers test items only, not training seeds.")
    found = identical_note({("", r): copies[r] for r in table.index if copies[r]}, labels,
                           scope=f"every item of seeds {seeds}")
    table = table.reset_index(drop=True)
    table.attrs["note"] = f"{note} {found}" if found else note
    return table


def write_ablation(table: pd.DataFrame, csv: str | os.PathLike[str], md: str | os.PathLike[str],
                   tex: str | os.PathLike[str], caption: str) -> None:
    """The ablation table as CSV, Markdown and LaTeX, atomically; the caption is followed by the table's note
    (``ablation_table``: what 'vs configured' compares and what its interval covers). The ``identical_to``
    column is in the CSV only (the other two mark such a row with MARK and say so in the note)."""
    note = table.attrs.get("note", "")
    caption = f"{caption.rstrip(' .')}. {note}" if note else caption
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    shown = table.drop(columns="identical_to", errors="ignore")
    write_text(md, f"{caption}\n\n" + shown.to_markdown(index=False) + "\n")
    write_text(tex, shown.to_latex(index=False, caption=latex_caption(caption), label="tab:semalign-ablation",
                                   escape=True))


def result_path(root: str | os.PathLike[str], slug: str, seed: int) -> Path:
    return Path(root) / slug / f"seed{seed}.json"
