"""The transfer probe: does a method's teacher signal carry the teacher's knowledge at all?

No method moves the toy world's held-out facts in the main table, and that table cannot tell "the channel
cannot carry knowledge" from "the task data never exercises it": no training input mentions a held-out
entity. The probe trains each transfer channel on questions about exactly those facts, phrased in ways the
test split does not use and with **no answer** (:func:`probe_records`: the one supervised
token is the EOS, predicted at the position where the answer would start), so a method can learn a fact only
from its teacher signal at that position:

* ``kd``: the teacher's next-token distribution (top-k, alpha 1: no cross-entropy): the positive control;
* ``semalign_logit`` / ``semalign_cosine``: the paired layer's mapped teacher signal alone (layer term only:
  its output term is a gold label, and the align phase reads another split);
* ``fitnet``: the learned-projector hint alone (no cross-entropy);
* ``lora``: the same inputs with their only label, the EOS, and no teacher: the negative control.

Each row is trained on the probe split and evaluated on the toy_mmlu test split (its held-out and control
facts); :func:`probe_table` compares every row with LoRA, paired over items and seeds
(:func:`pkt.report.tables.vs_reference`). The rows' settings are the configured ones
(:func:`pkt.config_settings.method_settings` for the task the facts come from) with :data:`PROBE_ROWS`'
overrides.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pkt.data.records import make_record

# Phrasings that no toy split, corpus or test item uses (pkt.data.toyworld), two per attribute, picked among eight
# candidates for where the default run's teacher answers best (it learned the facts in other words: 0.61/0.47,
# 0.85/0.39, 0.94/0.78, 0.80/0.48 held-out accuracy for city, profession, colour, pet).
PROBE_QUESTIONS: dict[str, tuple[str, str]] = {
    "city": ("In which city does {e} live?", "Which city is the home of {e}?"),
    "profession": ("Name the profession of {e}.", "Which profession does {e} have?"),
    "colour": ("Which colour is the favourite of {e}?", "Name the favourite colour of {e}."),
    "pet": ("Which pet does {e} have?", "What is the pet of {e}?"),
    "instrument": ("Name the instrument that {e} plays.", "What is the instrument of {e}?"),
}
PROBE_TASK = "toy_mmlu"  # the test split whose held-out facts the probe asks about, and is scored on
# row -> (method run, settings fixed over the configured ones): each row's teacher signal alone.
PROBE_ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "lora": ("lora", {}),
    "kd": ("kd", {"kd_alpha": 1.0}),
    "semalign_logit": ("semalign", {"map": "logit", "output_weight": 0.0, "ce_weight": 0.0, "align_steps": 0}),
    "semalign_cosine": ("semalign", {"map": "cosine", "output_weight": 0.0, "ce_weight": 0.0, "align_steps": 0}),
    "fitnet": ("fitnet", {"ce_weight": 0.0}),
}
SIGNALS = {"lora": "none (the EOS label only): negative control", "kd": "teacher distribution (top-k KL)",
           "semalign_logit": "mapped layer target, logit map", "semalign_cosine": "mapped layer target, cosine map",
           "fitnet": "teacher layer through a learned projector"}


def probe_records(test_records: list[dict]) -> list[dict]:
    """The transfer probe's split: for every held-out fact of the toy_mmlu test split (the student never saw
    it), its question in each :data:`PROBE_QUESTIONS` phrasing with an empty answer. Training on it can learn
    the fact only from a teacher signal at the position that predicts the answer (the one supervised token is
    the EOS), never from a gold label; the test items keep their own phrasing."""
    out = []
    for r in test_records:
        if r.get("known_by_student") is not False:
            continue
        for k, template in enumerate(PROBE_QUESTIONS[r["attribute"]]):
            out.append(make_record("transfer_probe", template.format(e=r["entity"]), "", entity=r["entity"],
                                   attribute=r["attribute"], phrasing=k, test_id=r["id"]))
    return out


def probe_settings(configured: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """{row: (method, settings)}: each method's configured settings (``configured[method]``) with the row's
    overrides, which leave it only its teacher signal."""
    missing = sorted({method for method, _ in PROBE_ROWS.values()} - set(configured))
    if missing:
        raise KeyError(f"the transfer probe needs the settings of {missing}")
    return {row: (method, {**configured[method], **fixed}) for row, (method, fixed) in PROBE_ROWS.items()}


def result_path(root: str | os.PathLike[str], row: str, seed: int) -> Path:
    return Path(root) / row / f"seed{seed}.json"


def probe_table(students: Iterable[str | os.PathLike[str]], results: Iterable[str | os.PathLike[str]], pairs: dict,
                n_boot: int, level: float, seed: int):
    """Rows: the vanilla student (``students``: its eval results on the probe task, one per pair) and each
    probe row (mean ± std over seeds) on MMLU and its held-out and control facts, then per column the row minus
    LoRA with its paired interval (``vs_reference``: items by entity cluster, seeds paired). A pandas DataFrame, one
    line per row, the student named with its model; ``attrs``: ``note`` (how to read it, the protocol),
    ``footnotes`` and ``headers``, for :func:`pkt.report.noted.write_noted_table`."""
    from pkt.report.noted import add_versus  # here, not at the top: common.smk imports this module (pandas: 1.5 s)
    from pkt.report.shown import headers, protocol_note, row_label
    from pkt.report.tables import describe_results, formatted, load_items, load_results, main_table, vs_reference

    paths = [*students, *results]
    info = describe_results(paths, pairs)
    main = main_table(load_results(paths, pairs))
    table = formatted(main).drop(columns=["Average", "Gap to teacher"], errors="ignore")
    keys = list(main.index)
    rows = [row for _, row in keys]
    versus = vs_reference(load_items(paths, pairs), reference="lora", n_boot=n_boot, level=level, seed=seed)
    table.insert(list(table.columns).index("Model") + 1, "Teacher signal",
                 [SIGNALS.get(r, "none (not trained)") for r in rows])
    found = add_versus(table, rows, versus, "vs LoRA", {row: row_label(pair, row, info.models) for pair, row in keys})
    note = (f"Transfer probe: each row trained only on questions about the held-out facts in phrasings the test does "
            f"not use, with no answers, so only its teacher signal can teach a fact. 'vs LoRA' = row minus LoRA (no "
            f"teacher signal), paired by seed, with a {level:.0%} interval over test items (resampled by entity) and "
            "training seeds; * = the interval excludes 0.")
    table = table.reset_index(drop=True)
    table.attrs.update(note=" ".join(n for n in (note, protocol_note(info)) if n), footnotes=[found] if found else [],
                       headers=headers(list(table.columns), info))
    return table


def run_probe(teacher_dir: str | os.PathLike[str], student_dir: str | os.PathLike[str],
              probe_split: str | os.PathLike[str], pairing: Mapping[str, Any], rows: Mapping[str, tuple[str, dict]],
              targets: Mapping[str, Any], train: Mapping[str, Any], evaluation: Mapping[str, Any],
              seeds: Iterable[int], root: str | os.PathLike[str], tasks_dir: str | os.PathLike[str],
              data: Mapping[str, Any], names: tuple[str, str], max_length: int, device: str, threads: int = 1,
              meta: Mapping[str, Any] | None = None) -> list[Path]:
    """Teacher targets of the probe split (in ``root/targets``), every row of ``rows`` (:func:`probe_settings`)
    trained on it per seed, then each adapter evaluated on :data:`PROBE_TASK`; returns the result files
    (:func:`result_path`, the ``evaluate`` rule's format)."""
    from pkt.evaluation.evaluate import load_lm, run_task, task_options, use_adapter
    from pkt.io import atomic_dir, write_json
    from pkt.methods.semalign.targets import (
        TargetSettings,
        plan_targets,
        student_maps,
        trained_pairs,
        write_task_targets,
    )
    from pkt.models.build import load_model, load_tokenizer
    from pkt.runtime import cpu_provenance, setup_torch
    from pkt.train import train as train_adapter

    root = Path(root)
    settings = TargetSettings(**targets)
    teacher, _ = load_model(teacher_dir, device)
    maps, vocab = student_maps(teacher, student_dir, list(names), False)
    plans = plan_targets(load_tokenizer(student_dir), {"train": probe_split}, 64, max_length)
    with atomic_dir(root / "targets") as tmp:
        write_task_targets(tmp, teacher, plans, trained_pairs(pairing, settings.pairs, settings.interpolate), maps,
                           settings, {"probe": str(probe_split)}, vocab=vocab)
    del teacher
    adapters = {}
    for row, (method, method_settings) in rows.items():
        for seed in seeds:
            setup_torch(threads, seed)
            out = root / row / f"adapter-seed{seed}"
            train_adapter(method=method, method_settings=method_settings, student_dir=student_dir,
                          train_split=probe_split, out_dir=out, checkpoint_dir=root / row / f"checkpoints-seed{seed}",
                          settings=dict(train), seed=seed, device=device, inputs={"targets": str(root / "targets")})
            adapters[(row, seed)] = out
    lm = load_lm(student_dir, {f"{row}-seed{seed}": str(path) for (row, seed), path in adapters.items()},
                 batch_size=evaluation["batch_size"], device=device, max_length=max_length,
                 dtype=evaluation["dtype"])
    written = []
    for (row, seed), path in adapters.items():
        setup_torch(threads, seed)
        use_adapter(lm, f"{row}-seed{seed}")
        summary, _ = run_task(lm, PROBE_TASK, tasks_dir, data=dict(data), seed=seed, **task_options(dict(evaluation)))
        path_out = result_path(root, row, seed)
        write_json(path_out, {**summary, "method": row, "adapter": {"path": str(path)},
                              "probe": {"split": str(probe_split), "signal": SIGNALS[row]},
                              "cpu": cpu_provenance() if device == "cpu" else None, **(meta or {})})
        written.append(path_out)
    return written
