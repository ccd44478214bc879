"""Seeking Neural Nuggets (Zhong et al., ICLR 2024): sensitivity (``sensitivity``), the extraction of teacher
weights as LoRA factors (``extract``) and its figure (``plot``), and the ``seeking`` method (``method``).

Rules ``extract_seeking`` and ``train`` (method ``seeking``).
"""
