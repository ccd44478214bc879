"""SemAlign's ablation (rule ``semalign_ablation``): one switch flipped at a time against the configured run.

The variants, each against the ``semalign`` config section as it is (the SemAlign row of the main table):
the other objective version (v1 <-> v2), the layer term alone, the output term alone, the other aligned
signal (residual contribution <-> layer output), and interpolation switched (on <-> off; identical
targets, hence identical results, wherever the depth ratio L_T / L_S is integral). To keep the default
run's budget each variant is trained and evaluated on one task (``semalign.ablation.task``, default
toy_mmlu: the held-out facts are the transfer question) with ``semalign.ablation.seeds``; its results are
written in the ``evaluate`` rule's format, so :mod:`pkt.report.tables` builds the table with its intervals.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pkt.io import atomic_path, write_text
from pkt.report.tables import formatted, interval, load_items, load_results, main_table, vs_reference


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
    """Rows: the configured SemAlign and each variant; cells 'mean ± std' and the difference to the configured
    row with its paired bootstrap interval (items and seeds), per column of the ablation task."""
    paths = [*configured, *ablated]
    main = main_table(load_results(paths, pairs))
    table = formatted(main).drop(columns=["Average", "Gap to teacher"], errors="ignore")
    table.index = main.index.get_level_values("row")
    order = ["semalign", *(r for r in labels if r != "semalign")]
    table = table.reindex([r for r in order if r in table.index])
    versus = vs_reference(load_items(paths, pairs), reference="semalign", n_boot=n_boot, level=level, seed=seed)
    for column in [c for c in table.columns if c not in ("Model", "Seeds")]:
        table[f"{column} vs configured"] = [
            interval(*(versus.xs(row, level="row")[(s, column)].iloc[0] for s in ("diff", "lo", "hi")))
            if row != "semalign" and ("diff", column) in versus.columns else ""
            for row in table.index
        ]
    table["Model"] = [labels.get(r, r) for r in table.index]
    return table.reset_index(drop=True)


def write_ablation(table: pd.DataFrame, csv: str | os.PathLike[str], md: str | os.PathLike[str],
                   tex: str | os.PathLike[str], caption: str) -> None:
    """The ablation table as CSV, Markdown and LaTeX, atomically."""
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    write_text(md, f"{caption}\n\n" + table.to_markdown(index=False) + "\n")
    write_text(tex, table.to_latex(index=False, caption=caption, label="tab:semalign-ablation", escape=True))


def result_path(root: str | os.PathLike[str], slug: str, seed: int) -> Path:
    return Path(root) / slug / f"seed{seed}.json"
