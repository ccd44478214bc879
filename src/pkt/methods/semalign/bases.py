"""SemAlign (Gu et al., arXiv 2510.24208): teacher -> student transfer through vocabulary-defined semantic bases.

Teacher and student share one vocabulary, so the i-th vocabulary item names "the same thing" in both
models. Each model's LM head W [V, D] defines, for every item i, a latent direction s_i whose logits are the
one-hot e_i: column i of pinv(W) (:func:`semantic_bases`). A teacher vector h_T is decomposed into
coefficients over the teacher's items and recomposed with the student's bases. Eq. 1 admits two readings of
the coefficients, both one precomputed [D_S, D_T] matrix M (:func:`map_matrix`, :func:`map_rows`):

* ``logit``: a = W_T h_T, the teacher's logits over the shared ids; target = pinv(W_S) a, i.e.
  M = pinv(W_S) W_T with pinv's columns *not* normalised. With teacher = student it is the identity
  (pinv(W) W = I for a full-column-rank head), and the target's logits W_S M h_T are the least-squares fit of
  the teacher's logits: the map carries what the teacher's layer says about every vocabulary item.
* ``cosine`` (an earlier reading of Eq. 1): a = S_T^T h_T / ||h_T||, the cosines to the unit-column teacher
  bases; target = S_S a, M = S_S S_T^T. Not identity-consistent on a trained (anisotropic) head: S S^T
  boosts the directions the head reads least (measured in the README).

The student is then trained to match the targets:

* v1: :func:`layer_cosine_loss` on paired layers plus :func:`onehot_output_loss` on the logits;
* v2: :func:`relational_loss` (token-token geometry, invariant to rotation and scale of either space) plus
  :func:`topk_kl` against the teacher's stored top-k logits.

:func:`linear_cka` and :func:`recompose_cosine` are analysis helpers (representation similarity and the
paper's decompose-and-recompose motivation check, under either coefficient rule). Everything is plain torch;
targets and teacher quantities are treated as constants (detached), so gradients reach the student only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
MAPS = ("logit", "cosine")  # semalign.map: the coefficient rule of Eq. 1 (module docstring)
EPS = 1e-12  # clamp for norms, so zero vectors map to zero instead of NaN


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half/bfloat16/float32 inputs, float64 stays float64: the losses are computed at least in fp32."""
    return torch.promote_types(x.dtype, torch.float32)


def unit_columns(matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` with each column scaled to unit L2 norm; a zero column stays zero (the norm is clamped at EPS)."""
    return matrix / matrix.norm(dim=0, keepdim=True).clamp_min(EPS)


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """x / ||x|| along the last axis; a zero vector stays zero (the norm is clamped at EPS)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(EPS)


# ------------------------------------------------------------------------------------------- the bases --
def semantic_bases(lm_head_weight: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The vocabulary-defined semantic bases of an LM head, as the columns of a [D, V] matrix.

    ``lm_head_weight`` is in HF layout [V, D] (logits = h @ W.T). The basis of item i is the least-squares
    latent whose logits are e_i, i.e. column i of pinv(W); the pseudo-inverse is taken in float64 (W is
    ill-conditioned in low precision), each column is scaled to unit L2 norm (only directions matter: the
    mapping uses cosines) and the result is cast to ``dtype`` (default: W's dtype).
    """
    if lm_head_weight.ndim != 2:
        raise ValueError(f"lm_head weight must be 2-D [V, D], got shape {tuple(lm_head_weight.shape)}")
    pinv = torch.linalg.pinv(lm_head_weight.detach().to(torch.float64))  # [D, V]
    return unit_columns(pinv).to(dtype or lm_head_weight.dtype)


def shared_vocab_size(v_teacher: int, v_student: int, teacher: str, student: str, restrict: bool = False) -> int:
    """The vocabulary size both models' bases are aligned over.

    The bases are index-aligned, so the vocabularies must agree. Equal sizes are returned as is; different
    sizes raise unless ``restrict`` is set, in which case the shared ids 0..min-1 are used (e.g. a teacher
    that appended a pad token: WizardCoder's 32,001 vs Llama's 32,000).
    """
    if v_teacher == v_student:
        return v_teacher
    if restrict:
        return min(v_teacher, v_student)
    raise ValueError(
        f"SemAlign needs a shared vocabulary: teacher {teacher!r} has {v_teacher} tokens but student "
        f"{student!r} has {v_student}; pass restrict=True to use the shared ids 0..{min(v_teacher, v_student) - 1}"
    )


# ---------------------------------------------------------------------------------------- the mapping --
def _check_bases(student_bases: torch.Tensor, teacher_bases: torch.Tensor) -> None:
    if student_bases.ndim != 2 or teacher_bases.ndim != 2:
        raise ValueError(
            f"bases must be 2-D [D, m]; got student {tuple(student_bases.shape)}, teacher {tuple(teacher_bases.shape)}"
        )
    if student_bases.shape[1] != teacher_bases.shape[1]:
        raise ValueError(
            f"student and teacher bases cover different vocabularies: student {student_bases.shape[1]} columns, "
            f"teacher {teacher_bases.shape[1]} (slice both to the shared size first, see shared_vocab_size)"
        )


def mapping_matrix(student_bases: torch.Tensor, teacher_bases: torch.Tensor) -> torch.Tensor:
    """The cosine rule's M = S_S S_T^T, [D_S, D_T] float32, so that target = M (h_T / ||h_T||) (float64 inside).

    ``student_bases`` is [D_S, m], ``teacher_bases`` [D_T, m] over the same m vocabulary items.
    """
    _check_bases(student_bases, teacher_bases)
    return (student_bases.detach().double() @ teacher_bases.detach().double().T).float()


def map_two_step(h: torch.Tensor, teacher_bases: torch.Tensor, student_bases: torch.Tensor) -> torch.Tensor:
    """The cosine rule as the digest states Eq. 1: a = S_T^T h/||h|| (cosines to every teacher basis), target = S_S a.

    ``h`` is [..., D_T]; the result is [..., D_S] in at least float32. Costs O(m) per vector; for training use
    :func:`mapping_matrix` + :func:`map_teacher`, which give the same result.
    """
    _check_bases(student_bases, teacher_bases)
    if h.shape[-1] != teacher_bases.shape[0]:
        raise ValueError(f"hidden width {h.shape[-1]} does not match the teacher bases' width {teacher_bases.shape[0]}")
    dt = _work_dtype(h)
    coeffs = _unit_rows(h.detach().to(dt)) @ teacher_bases.to(dt)  # [..., m]
    return coeffs @ student_bases.to(dt).T


def map_matrices(student_head: torch.Tensor, teacher_head: torch.Tensor, kinds: tuple[str, ...] = MAPS
                 ) -> dict[str, torch.Tensor]:
    """{rule: [D_S, D_T] float32 matrix} for each coefficient rule of ``kinds`` (:data:`MAPS`), from the two LM
    heads [V, D] over the same V items. One float64 pinv per distinct head (the student's serves both rules;
    a head passed as both teacher and student is inverted once): at 32,000 x 5,120 each takes seconds."""
    unknown = sorted(set(kinds) - set(MAPS))
    if unknown:
        raise ValueError(f"semalign.map must be one of {MAPS}, got {unknown}")
    if student_head.ndim != 2 or teacher_head.ndim != 2 or student_head.shape[0] != teacher_head.shape[0]:
        raise ValueError(f"expected LM heads [V, D_S] and [V, D_T] over one vocabulary; got "
                         f"{tuple(student_head.shape)} and {tuple(teacher_head.shape)}")
    w_s, w_t = student_head.detach().double(), teacher_head.detach().double()
    pinv_s = torch.linalg.pinv(w_s)  # [D_S, V]
    out = {}
    if "logit" in kinds:
        out["logit"] = (pinv_s @ w_t).float()
    if "cosine" in kinds:
        pinv_t = pinv_s if teacher_head is student_head else torch.linalg.pinv(w_t)
        out["cosine"] = mapping_matrix(unit_columns(pinv_s), unit_columns(pinv_t))
    return out


def map_matrix(kind: str, student_head: torch.Tensor, teacher_head: torch.Tensor) -> torch.Tensor:
    """The [D_S, D_T] matrix of coefficient rule ``kind`` (:data:`MAPS`) from the two LM heads [V, D]."""
    if kind not in MAPS:
        raise ValueError(f"semalign.map must be one of {MAPS}, got {kind!r}")
    return map_matrices(student_head, teacher_head, (kind,))[kind]


def map_teacher(h: torch.Tensor, matrix: torch.Tensor, unit: bool = True) -> torch.Tensor:
    """target = M (h / ||h||) (``unit``, the cosine rule) or M h, for h of shape [..., D_T]; returns [..., D_S]."""
    if matrix.ndim != 2 or h.shape[-1] != matrix.shape[1]:
        raise ValueError(f"hidden width {h.shape[-1]} does not match the mapping matrix {tuple(matrix.shape)}")
    dt = _work_dtype(h)
    h = h.detach().to(dt)
    return (_unit_rows(h) if unit else h) @ matrix.to(dt).T


def map_rows(h: torch.Tensor, matrix: torch.Tensor, kind: str) -> torch.Tensor:
    """Teacher rows [..., D_T] -> targets [..., D_S] under coefficient rule ``kind`` with its :func:`map_matrix`:
    the cosine rule normalises each row first (Eq. 1's h / ||h||), the logit rule is linear in h."""
    if kind not in MAPS:
        raise ValueError(f"semalign.map must be one of {MAPS}, got {kind!r}")
    return map_teacher(h, matrix, unit=kind == "cosine")


# --------------------------------------------------------------------------------------------- losses --
def layer_cosine_loss(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """v1 layer term: 1 - mean cos(student_n, target_n) over the rows of [N, D] (0 same, 1 orthogonal, 2 opposite).

    The target is detached: it is a fixed goal computed from the teacher.
    """
    if student.ndim != 2 or student.shape != target.shape:
        raise ValueError(f"expected student and target of the same shape [N, D]; got {tuple(student.shape)} "
                         f"and {tuple(target.shape)}")
    if student.shape[0] == 0:
        raise ValueError("layer_cosine_loss: no supervised position (0 rows)")
    dt = _work_dtype(student)
    cos = F.cosine_similarity(student.to(dt), target.detach().to(dt), dim=-1, eps=1e-8)
    return 1.0 - cos.mean()


def onehot_output_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """v1 output term: 1 - mean cos(z, onehot(gold)) over supervised positions, with causal-LM shifting.

    ``logits`` [B, T, V], ``labels`` [B, T]: the logits at position t-1 are scored against labels[t] wherever
    labels[t] != -100. cos(z, e_y) = z_y / ||z||, so the loss is 0 exactly when z is a positive multiple of e_y.
    """
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"expected logits [B, T, V] and labels [B, T]; got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    z, y = logits[:, :-1], labels[:, 1:]
    keep = y != IGNORE_INDEX
    if not bool(keep.any()):
        raise ValueError("onehot_output_loss: no supervised position (every shifted label is -100)")
    z, y = z[keep].to(_work_dtype(logits)), y[keep].long()
    if int(y.min()) < 0 or int(y.max()) >= z.shape[-1]:
        raise ValueError(f"labels must lie in [0, {z.shape[-1]}) or be -100; got {int(y.min())}..{int(y.max())}")
    cos = z.gather(-1, y[:, None]).squeeze(-1) / z.norm(dim=-1).clamp_min(EPS)
    return 1.0 - cos.mean()


def relational_loss(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """v2 layer term for one sequence: mean squared difference of the token x token cosine matrices.

    ``student`` [n, D_S], ``target`` [n, D_T'] (widths may differ). Each side's token vectors are centred
    (mean over the sequence removed) and L2-normalised, so the loss only sees the relative geometry of the
    tokens: it is 0 for identical inputs and invariant to any rotation or scaling of either space. n = 1
    gives 0 (a single centred vector is zero). The target is detached.
    """
    if student.ndim != 2 or target.ndim != 2 or student.shape[0] != target.shape[0]:
        raise ValueError(f"expected [n, D_S] and [n, D_T] with the same n; got {tuple(student.shape)} and "
                         f"{tuple(target.shape)}")
    if student.shape[0] == 0:
        raise ValueError("relational_loss: no supervised position (0 tokens)")
    dt = _work_dtype(student)

    def gram(x: torch.Tensor) -> torch.Tensor:
        x = x.to(dt)
        u = F.normalize(x - x.mean(dim=0, keepdim=True), dim=-1, eps=EPS)
        return u @ u.T

    return (gram(student) - gram(target.detach())).pow(2).mean()


def topk_kl(
    student_logits: torch.Tensor, teacher_values: torch.Tensor, teacher_ids: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """v2 output term: KL(p_T || q_S) over the teacher's stored top-k ids, mean over positions.

    ``student_logits`` [N, V]; ``teacher_values`` [N, k] are the teacher's logits at ``teacher_ids`` [N, k].
    Both are restricted to the k ids and softmaxed over them at ``temperature`` (no T^2 rescaling).
    Leading dimensions other than N are allowed if they agree and are flattened.
    """
    if student_logits.ndim < 2 or teacher_values.shape != teacher_ids.shape or \
            teacher_values.shape[:-1] != student_logits.shape[:-1]:
        raise ValueError(f"expected student logits [N, V] and teacher values/ids [N, k]; got "
                         f"{tuple(student_logits.shape)}, {tuple(teacher_values.shape)}, {tuple(teacher_ids.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    n_vocab, k = student_logits.shape[-1], teacher_ids.shape[-1]
    logits = student_logits.reshape(-1, n_vocab)
    ids, values = teacher_ids.reshape(-1, k).long(), teacher_values.detach().reshape(-1, k)
    if logits.shape[0] == 0 or k == 0:
        raise ValueError("topk_kl: no supervised position (N = 0 or k = 0)")
    if int(ids.min()) < 0 or int(ids.max()) >= n_vocab:
        raise ValueError(f"teacher ids must lie in [0, {n_vocab}); got {int(ids.min())}..{int(ids.max())}")
    dt = _work_dtype(student_logits)
    log_q = F.log_softmax(logits.to(dt).gather(-1, ids) / temperature, dim=-1)
    log_p = F.log_softmax(values.to(dt) / temperature, dim=-1)
    p = log_p.exp()
    kl = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)  # 0 log 0 = 0 (e.g. -inf pads)
    return kl.mean()


# ------------------------------------------------------------------------------------------- analysis --
def _centred(h: torch.Tensor) -> torch.Tensor:
    """h [n, d] in float64 with each column's mean over the n rows removed."""
    h = h.detach().double()
    return h - h.mean(dim=0, keepdim=True)


def _undefined() -> ValueError:
    return ValueError("linear_cka is undefined for a constant representation (zero after centring)")


def unit_gram(h: torch.Tensor) -> torch.Tensor:
    """The centred n x n Gram matrix of h [n, d], scaled to unit Frobenius norm, in float64: linear
    CKA(X, Y) = <unit_gram(X), unit_gram(Y)>, so a layer's Gram matrix can be computed once for many pairs."""
    x = _centred(h)
    gram = x @ x.T
    norm = gram.norm()
    if float(norm) == 0.0:
        raise _undefined()
    return gram / norm


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of X [n, d1] and Y [n, d2] (rows = the same n inputs), in float64.

    Columns are centred; CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), in [0, 1], invariant to orthogonal
    transforms and isotropic scaling of either side. When n is smaller than the widths the equal n x n Gram
    form <XX^T, YY^T> / (||XX^T|| ||YY^T||) is used (same value, cheaper: :func:`unit_gram`).
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"expected X [n, d1] and Y [n, d2] with the same n; got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < x.shape[1] + y.shape[1]:
        return float((unit_gram(x) * unit_gram(y)).sum())
    x, y = _centred(x), _centred(y)
    num, den = (y.T @ x).pow(2).sum(), (x.T @ x).norm() * (y.T @ y).norm()
    if float(den) == 0.0:
        raise _undefined()
    return float(num / den)


def recompose_cosine(h: torch.Tensor, bases: torch.Tensor, head: torch.Tensor | None = None) -> float:
    """Mean cos(r, r_hat): how well bases B [D, m] decompose and recompose h [N, D] (the paper's motivation
    check), in float64.

    Cosine rule (``head`` None): coefficients B^T r, r_hat = B B^T r; for an orthonormal basis of R^D it is 1,
    for the unit pinv bases of a *trained* head it is not (it boosts the directions the head reads least).
    Logit rule (``head`` = the LM head W [m, D]): the coefficients are the logits W r and r_hat = B W r; with
    B = pinv(W) (unnormalised) it is exactly 1, with unrelated bases (random, the input embedding) near 0.
    """
    if h.ndim != 2 or bases.ndim != 2 or h.shape[1] != bases.shape[0]:
        raise ValueError(f"expected h [N, D] and bases [D, m]; got {tuple(h.shape)} and {tuple(bases.shape)}")
    if head is not None and tuple(head.shape) != (bases.shape[1], bases.shape[0]):
        raise ValueError(f"the logit rule needs a head [m, D] = {(bases.shape[1], bases.shape[0])}; got "
                         f"{tuple(head.shape)}")
    if h.shape[0] == 0:
        raise ValueError("recompose_cosine: no vectors (N = 0)")
    r, b = h.detach().double(), bases.detach().double()
    coeffs = r @ (b if head is None else head.detach().double().T)
    r_hat = coeffs @ b.T
    return float(F.cosine_similarity(r, r_hat, dim=-1, eps=EPS).mean())
