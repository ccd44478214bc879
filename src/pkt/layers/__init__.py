"""The layers wing: per-layer importance (``importance``) and the teacher/student layer pairing with its figure
(``pairing``, ``pairing_plot``), which every method builds on.

Rules ``score_importance`` and ``pair_layers``. Imports the data and models wings and the root helpers.
"""
