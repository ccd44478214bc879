"""Logit distillation from stored teacher logits (Hinton et al. 2015), the ``kd`` baseline's loss.

The training loss is (1 - a) CE + a T^2 KL(p_T || q_S) on the response tokens, where p_T and q_S are the
teacher's and student's next-token distributions at temperature T. The T^2 factor keeps the soft term's
gradient on the scale of the CE's as T grows.

The teacher is never loaded during training: the ``teacher_targets`` rule stored its ``topk`` largest logits
per response position (:mod:`pkt.targets`). KL is therefore taken over the teacher's top-k ids, both
distributions renormalised over those k ids (:func:`pkt.semalign.topk_kl`): exactly 0 when the student's
logits equal the teacher's there, and with full support as k reaches the vocabulary. What is left out is
the teacher's mass outside its top k, which a peaked teacher barely has; the cross-entropy term keeps the
student's whole distribution anchored on the gold token.
"""

from __future__ import annotations

import torch

from pkt.semalign import topk_kl


def kd_term(student_logits: torch.Tensor, teacher_values: torch.Tensor, teacher_ids: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """T^2 KL(p_T || q_S) over the teacher's top-k ids, mean over positions (``student_logits`` [N, V])."""
    return temperature**2 * topk_kl(student_logits, teacher_values, teacher_ids, temperature)

