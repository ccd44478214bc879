"""LaTen (Neural Incompatibility, PrePKT): locate the teacher's units (``locate``), translate and inject them
(``translate``), and the ``laten`` method (``method``).

Rule ``train`` (method ``laten``).
"""
