"""SemAlign (Gu et al., arXiv 2510.24208): the semantic bases and losses (``bases``), the stored teacher targets
(``targets``), the ``semalign`` method (``method``), its analyses (``analysis``) and its ablation (``ablation``).

Rules ``teacher_targets``, ``train`` (method ``semalign``), ``analyze_semalign``, ``semalign_ablation`` and
``ablation_table``. KD and FitNet read the same stored targets.
"""
