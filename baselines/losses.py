"""Pure loss functions of the comparison methods, one per idea, golden-tested on fixed inputs.

Every function takes plain tensors (logits ``B x K`` or embeddings ``B x D``) and returns a scalar
tensor; none of them holds state or weights. The methods in this package combine them with the
weights of their ``paper`` or ``original`` preset. Inputs are cast to float32 so the losses are
computed at full precision under mixed-precision training.
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from typing import Any, Literal

import torch
import torch.nn.functional as F  # noqa: N812  (the PyTorch convention)
from torch import Tensor

# --- logit distillation --------------------------------------------------------------------------


def kd_kl_div(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float | Tensor,
    scale_by_t2: bool = True,
) -> Tensor:
    """Hinton's soft-target loss ``KL(softmax(t/T) || softmax(s/T))``, summed over classes.

    Args:
        student_logits: ``B x K`` student logits.
        teacher_logits: ``B x K`` teacher logits.
        temperature: Softening temperature ``T`` (a float, or a scalar tensor such as CTKD's
            learnable temperature, through which gradients flow).
        scale_by_t2: Multiply by ``T**2`` (Hinton et al.; the ACKD code's vanilla KD does not).

    Returns:
        The batch mean of the per-sample KL divergence.
    """
    s = student_logits.float()
    t = teacher_logits.float()
    log_p_s = F.log_softmax(s / temperature, dim=1)
    log_p_t = F.log_softmax(t / temperature, dim=1)
    loss = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    if scale_by_t2:
        loss = loss * temperature**2
    return loss


def logit_mse(
    student_logits: Tensor,
    teacher_logits: Tensor,
    class_reduction: Literal["mean", "sum"] = "mean",
) -> Tensor:
    """Squared error between raw logits (Ba & Caruana's "mimic" regression).

    Args:
        student_logits: ``B x K`` student logits.
        teacher_logits: ``B x K`` teacher logits.
        class_reduction: ``"mean"`` averages over classes (``torch.nn.MSELoss``, as the ACKD
            code); ``"sum"`` sums the squared error over classes (Ba & Caruana's
            ``||g(x) - z||^2``).

    Returns:
        The batch mean of the per-sample error.
    """
    squared = (student_logits.float() - teacher_logits.float()).pow(2)
    per_sample = squared.sum(dim=1) if class_reduction == "sum" else squared.mean(dim=1)
    return per_sample.mean()


def standardize_logits(logits: Tensor, eps: float = 1e-7) -> Tensor:
    """Z-score each row of ``logits``: ``(z - mean) / (eps + std)``.

    The standard deviation is the unbiased one (``n - 1``), as in the LS-KD code.
    """
    z = logits.float()
    mean = z.mean(dim=1, keepdim=True)
    std = z.std(dim=1, keepdim=True)
    return (z - mean) / (eps + std)


def dkd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor,
    alpha: float,
    beta: float,
    temperature: float,
) -> Tensor:
    """Decoupled KD (Zhao et al., CVPR 2022): ``alpha * TCKD + beta * NCKD``.

    TCKD is the KL divergence between the binary (target, rest) distributions of teacher and
    student; NCKD the KL divergence between their distributions over the non-target classes.
    Both are summed over classes, multiplied by ``T**2`` and averaged over the batch. Probabilities
    are computed in log space (log-sum-exp), so no ``log(0)`` occurs.

    Args:
        student_logits: ``B x K`` student logits.
        teacher_logits: ``B x K`` teacher logits.
        target: ``B`` class indices.
        alpha: Weight of TCKD.
        beta: Weight of NCKD.
        temperature: Softening temperature.
    """
    s = student_logits.float() / temperature
    t = teacher_logits.float() / temperature
    target_mask = F.one_hot(target.long(), s.shape[1]).bool()

    def binary_log_probs(z: Tensor) -> Tensor:
        log_all = torch.logsumexp(z, dim=1)
        log_target = z.masked_fill(~target_mask, -math.inf).logsumexp(dim=1)
        log_rest = z.masked_fill(target_mask, -math.inf).logsumexp(dim=1)
        return torch.stack([log_target - log_all, log_rest - log_all], dim=1)

    log_b_s = binary_log_probs(s)
    log_b_t = binary_log_probs(t)
    tckd = (log_b_t.exp() * (log_b_t - log_b_s)).sum(dim=1).mean()

    log_nt_s = F.log_softmax(s.masked_fill(target_mask, -math.inf), dim=1)
    log_nt_t = F.log_softmax(t.masked_fill(target_mask, -math.inf), dim=1)
    diff = (log_nt_t - log_nt_s).masked_fill(target_mask, 0.0)
    nckd = (log_nt_t.exp() * diff).sum(dim=1).mean()
    return (alpha * tckd + beta * nckd) * temperature**2


class _GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``scale``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def gradient_reversal(x: Tensor, scale: float) -> Tensor:
    """Return ``x`` unchanged; its gradient is multiplied by ``scale`` on the way back.

    CTKD uses a negative ``scale`` (``lambda`` in its paper) so that the temperature ascends the
    distillation loss the student descends.
    """
    out: Tensor = _GradientReversal.apply(x, scale)
    return out


def cosine_schedule(epoch: int, epochs: int, start: float, end: float) -> float:
    """Cosine ramp from ``start`` (epoch 0) to ``end`` (epoch ``epochs`` and later).

    ``end + (start - end) * (1 + cos(pi * min(epoch, epochs) / epochs)) / 2``; CTKD's
    gradient-reversal factor uses ``start = 0, end = -1``.
    """
    progress = min(max(epoch, 0), epochs) / epochs if epochs > 0 else 1.0
    return end + (start - end) * (1.0 + math.cos(math.pi * progress)) / 2.0


# --- relational distillation ---------------------------------------------------------------------


def pairwise_distances(embeddings: Tensor, squared: bool = False, eps: float = 1e-12) -> Tensor:
    """Euclidean distance matrix of the rows of ``embeddings`` with a zero diagonal.

    Squared distances are clamped at ``eps`` before the square root (RKD's ``pdist``), so the
    gradient stays finite for coincident rows.
    """
    e = embeddings.float()
    sq = e.pow(2).sum(dim=1)
    dist = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * e @ e.t()).clamp(min=eps)
    if not squared:
        dist = dist.sqrt()
    eye = torch.eye(len(e), dtype=torch.bool, device=e.device)
    return dist.masked_fill(eye, 0.0)


def _normalise_by_positive_mean(matrix: Tensor) -> Tensor:
    positive = matrix[matrix > 0]
    return matrix / positive.mean() if positive.numel() else matrix


def rkd_distance_loss(student: Tensor, teacher: Tensor, eps: float = 1e-12) -> Tensor:
    """RKD distance loss (Park et al., CVPR 2019).

    Both pairwise distance matrices are divided by the mean of their positive entries; the loss
    is the smooth-L1 (Huber, beta 1) between them, averaged over all ``B * B`` entries. The teacher
    side carries no gradient.
    """
    with torch.no_grad():
        t_d = _normalise_by_positive_mean(pairwise_distances(teacher, eps=eps))
    s_d = _normalise_by_positive_mean(pairwise_distances(student, eps=eps))
    return F.smooth_l1_loss(s_d, t_d)


def _angles(embeddings: Tensor) -> Tensor:
    e = embeddings.float()
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
    return torch.bmm(diff, diff.transpose(1, 2)).reshape(-1)


def rkd_angle_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """RKD angle loss: smooth-L1 between the cosines of all triplet angles.

    The angle of triplet ``(i, j, k)`` is the one between ``e_j - e_i`` and ``e_k - e_i``; the
    loss is averaged over all ``B**3`` triplets and the teacher side carries no gradient.
    """
    with torch.no_grad():
        t_angle = _angles(teacher)
    return F.smooth_l1_loss(_angles(student), t_angle)


# --- DistilVPR (hyperbolic relational distillation) ------------------------------------------


@cache
def _poincare_ball(curvature: float) -> Any:
    with warnings.catch_warnings():  # geoopt scripts a few functions with torch.jit at import
        warnings.simplefilter("ignore", FutureWarning)
        import geoopt  # type: ignore[import-untyped]

    return geoopt.PoincareBall(c=curvature)


def to_poincare(x: Tensor, curvature: float) -> Tensor:
    """Map Euclidean vectors into the Poincaré ball: exponential map at 0, then projection.

    Uses :mod:`geoopt`'s ``PoincareBall`` (what hyptorch's ``ToPoincare`` computes, with
    geoopt's boundary margin).
    """
    out: Tensor = _poincare_ball(curvature).expmap0(x.float())
    return out


def poincare_distance_matrix(x: Tensor, y: Tensor, curvature: float) -> Tensor:
    """Return the ``len(x) x len(y)`` geodesic distances ``d(x_i, y_j)`` in the Poincaré ball."""
    out: Tensor = _poincare_ball(curvature).dist(x.unsqueeze(1), y.unsqueeze(0))
    return out


def _self_geodesic_distances(embeddings: Tensor, curvature: float) -> Tensor:
    # The diagonal is 0 in exact arithmetic; rounding can leave ~1e-7 there, which would count
    # as "positive" in the mean normalisation, so it is zeroed.
    points = to_poincare(embeddings, curvature)
    dist = poincare_distance_matrix(points, points, curvature)
    eye = torch.eye(len(points), dtype=torch.bool, device=points.device)
    return dist.masked_fill(eye, 0.0)


def rkdg_loss(
    student: Tensor,
    teacher: Tensor,
    curvature: float,
    distance_weight: float = 1.0,
    angle_weight: float = 1.0,
    geodesic_weight: float = 1.0,
) -> Tensor:
    """DistilVPR's self-agent loss "RKD-G": RKD distance + RKD angle + geodesic distance.

    The geodesic term compares the Poincaré-ball distance matrices of the embeddings, each divided
    by the mean of its positive entries, with smooth-L1; the teacher side carries no gradient.
    """
    s_g = _normalise_by_positive_mean(_self_geodesic_distances(student, curvature))
    with torch.no_grad():
        t_g = _normalise_by_positive_mean(_self_geodesic_distances(teacher, curvature))
    return (
        distance_weight * rkd_distance_loss(student, teacher)
        + angle_weight * rkd_angle_loss(student, teacher)
        + geodesic_weight * F.smooth_l1_loss(s_g, t_g)
    )


def _euclidean_distance_matrix(x: Tensor, y: Tensor) -> Tensor:
    # Differences then norm (not the Gram trick), so self-distances are exactly 0; PyTorch's norm
    # gradient at 0 is 0.
    return torch.linalg.vector_norm(x.unsqueeze(1) - y.unsqueeze(0), dim=-1)


def cross_agent_losses(
    student: Tensor,
    teacher: Tensor,
    curvature: float,
    student_weight: float,
    teacher_weight: float,
) -> dict[str, Tensor]:
    """DistilVPR's cross-agent losses on L2-normalised embeddings ``s`` and ``t``.

    For each relation ``R`` (Euclidean distance, cosine similarity, Poincaré geodesic distance)
    with matrices ``SS = R(s, s)``, ``ST = R(s, t)``, ``TT = R(t, t)``:
    ``student_weight * MSE(SS, sg(ST)) + teacher_weight * MSE(ST, sg(TT))``, where ``sg`` stops
    the gradient.

    Returns:
        ``{"distance": ..., "similarity": ..., "geodesic": ...}`` (each already weighted).
    """
    s = F.normalize(student.float(), p=2, dim=1)
    t = F.normalize(teacher.float(), p=2, dim=1)
    s_p, t_p = to_poincare(s, curvature), to_poincare(t, curvature)
    relations = {
        "distance": (_euclidean_distance_matrix, s, t),
        "similarity": (lambda a, b: a @ b.t(), s, t),
        "geodesic": (lambda a, b: poincare_distance_matrix(a, b, curvature), s_p, t_p),
    }
    losses: dict[str, Tensor] = {}
    for name, (relation, a, b) in relations.items():
        ss, st, tt = relation(a, a), relation(a, b), relation(b, b)
        losses[name] = student_weight * F.mse_loss(ss, st.detach()) + teacher_weight * F.mse_loss(
            st, tt.detach()
        )
    return losses
