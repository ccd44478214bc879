"""FitNet-style hint loss (Romero et al. 2015) through a *learned* projector: the ``fitnet`` baseline's math.

SemAlign maps the teacher's paired-layer signal into the student's space with a fixed, vocabulary-defined
matrix (:mod:`pkt.semalign`). FitNet is the classic alternative it claims to beat: a linear regressor
W [D_T, D_S] from the student's signal to the teacher's, trained jointly with the student, and a distance
between W h_S and h_T. Everything else (the paired layers, the signal, the LoRA) is SemAlign's, so the two
rows differ only in the map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("cosine", "mse")


def hint_loss(projected: torch.Tensor, target: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Distance between projected student rows and teacher rows, both [N, D_T], averaged over rows.

    ``cosine``: 1 - mean cos (scale-free, like SemAlign's layer term); ``mse``: mean squared error per
    element (FitNet's original L2). The target is a fixed goal and is detached.
    """
    if kind not in LOSSES:
        raise ValueError(f"fitnet.loss must be one of {LOSSES}, got {kind!r}")
    if projected.ndim != 2 or projected.shape != target.shape:
        raise ValueError(f"expected projected student and teacher rows of one shape [N, D_T]; got "
                         f"{tuple(projected.shape)} and {tuple(target.shape)}")
    if projected.shape[0] == 0:
        raise ValueError("hint_loss: no supervised position (0 rows)")
    target = target.detach().to(projected.dtype)
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(projected, target, dim=-1, eps=1e-8).mean()
    return F.mse_loss(projected, target)
