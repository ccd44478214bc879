"""Cross-scale parametric knowledge transfer (Seeking, SemAlign) as a reproducible pipeline.

The library is laid out as the pipeline reads, one wing per stage, lowest first:

- root helpers: ``io``, ``runtime``, ``resources``, ``sources``, ``checkpoints``, ``rows``, ``config_checks``,
  ``config_settings``, ``config_schema``;
- ``data``: records, the toy world and tokenizer, the papers' splits;
- ``models``: building, pretraining and loading models, hub snapshots;
- ``layers``: layer importance and the teacher/student pairing;
- ``evaluation``: lm-eval, the tasks, the sandbox;
- ``report``: tables, figures, summaries;
- ``methods``: one module or package per transfer method;
- drivers: ``train`` (every method's trainer), ``probe`` and ``transfer_probe`` (which train or score).

A module imports only from its own wing and the wings above it in this list (``tests/test_layout.py``).
"""
