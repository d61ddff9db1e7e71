"""Semantic-aware Knowledge Alignment (SKA) of SemBridge: transport plans, re-weighting, CORAL.

SKA aligns the frozen teacher's last-stage tokens and pooled embedding with the student's
(reference §6). The released code does it in four steps, each a function here:

1. an *intra-modal plan* per modality, a learnable attention softmax (:class:`TokenAttentionPlan`)
   whose query-mean gives each token's importance (:func:`column_importance`);
2. a *cross-modal plan*, the outer product of the two importance vectors, mean-pooled back to
   per-token weights (:func:`cross_modal_weights`);
3. an energy-preserving re-weighting of the tokens (:func:`reweight_tokens`);
4. CORAL between the flattened refined tokens (``L_ot1``) and between the embeddings (``L_ot2``)
   (:func:`coral_loss`).

:class:`SemanticAlignment` chains them and returns the two unweighted losses. Its ``plan="ot"``
variant replaces the attention plans by an entropic optimal-transport plan computed with POT
(:func:`sinkhorn_plan`), an ablation of what the paper describes but the code does not do.
"""

from __future__ import annotations

import math
from typing import Literal

import ot
import torch
import torch.nn.functional as F  # noqa: N812  (the PyTorch convention)
from torch import Tensor, nn

from msrgb_bench.models.base import Features

PlanKind = Literal["attention", "ot"]
PLAN_KINDS: tuple[PlanKind, ...] = ("attention", "ot")

_SINKHORN_TOL = 1e-6
"""Sinkhorn stops early once the L2 error of the plan's row marginals is below this."""


def _full_precision(tensor: Tensor) -> Tensor:
    """Return ``tensor`` as float32, or float64 when it already is."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


# --- CORAL ------------------------------------------------------------------------------------


def coral_loss(x: Tensor, y: Tensor) -> Tensor:
    """CORAL between two ``B x d`` batches, as the released SemBridge code computes it.

    With centred batches ``Xc = X - mean(X)`` and ``Yc = Y - mean(Y)`` (means over the batch) the
    code forms the *un-normalised* scatter matrices ``S_X = Xc^T Xc`` and ``S_Y = Yc^T Yc`` (not
    divided by ``B - 1``) and returns ``mean((S_X - S_Y)**2) / (4 d) = ||S_X - S_Y||_F^2 / (4 d^3)``
    (the original Deep CORAL divides covariances by ``B - 1`` and the norm by ``4 d^2``).

    The ``d x d`` matrices are never built: for tokens flattened to ``d = 16 * 512`` each would
    take 268 MB in float32. Because ``||S||_F^2 = tr(S^T S)`` and the trace is cyclic,

    * ``||S_X||_F^2 = tr(Xc^T Xc Xc^T Xc) = ||Xc Xc^T||_F^2``,
    * ``<S_X, S_Y>_F = tr(Xc^T Xc Yc^T Yc) = ||Xc Yc^T||_F^2``,

    so ``||S_X - S_Y||_F^2 = ||Xc Xc^T||_F^2 - 2 ||Xc Yc^T||_F^2 + ||Yc Yc^T||_F^2``, three
    ``B x B`` Gram matrices costing ``O(B^2 d)`` time and ``O(B^2)`` memory. The subtraction can
    leave a tiny negative round-off when the two scatters are nearly equal; it is clamped to 0.
    The loss is computed in float32 (float64 when the inputs are), with autocast disabled.

    Under DDP each process computes it on its own share of the global batch (as the released,
    single-GPU code never had to): the un-normalised scatters then shrink with the local batch
    size, so with ``k`` processes the value is about ``1 / k^2`` of the one-process value.

    Args:
        x: ``B x d`` batch (the teacher's, in SemBridge).
        y: ``B x d`` batch of the same shape (the student's).

    Returns:
        The scalar loss (0 for ``B = 1``, whose centred batch is zero).

    Raises:
        ValueError: If the inputs are not 2-D or their shapes differ.
    """
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(
            f"coral_loss needs two B x d batches of the same shape, got {tuple(x.shape)} "
            f"and {tuple(y.shape)}"
        )
    d = x.shape[1]
    with torch.autocast(device_type=x.device.type, enabled=False):
        xc = _full_precision(x)
        yc = _full_precision(y).to(xc.dtype)
        xc = xc - xc.mean(dim=0, keepdim=True)
        yc = yc - yc.mean(dim=0, keepdim=True)
        squared_distance = (
            (xc @ xc.T).square().sum() - 2 * (xc @ yc.T).square().sum() + (yc @ yc.T).square().sum()
        )
        return squared_distance.clamp_min(0) / (4 * float(d) ** 3)


# --- the released attention plan ------------------------------------------------------------


class TokenAttentionPlan(nn.Module):
    """Intra-modal transport plan: multi-head attention probabilities over a modality's tokens.

    ``P = softmax(Q K^T * head_dim**-0.5)`` over the keys, per head, with ``Q`` and ``K`` linear
    maps of the tokens (no bias, no dropout), as SemBridge's attention module. The released
    module has a ``C -> 3C`` ``qkv`` projection and an output projection, but returns only ``P``:
    its value path and output projection never reach the loss. Only the query and key projection
    (``C -> 2C``) is created here, so that every parameter receives a gradient (which
    ``DistributedDataParallel`` requires); the released ``qkv`` weight's first ``2C`` rows are
    this ``qk`` weight.

    Args:
        dim: Token width ``C``.
        heads: Number of heads; must divide ``dim``.

    Raises:
        ValueError: If ``heads`` is not positive or does not divide ``dim``.
    """

    def __init__(self, dim: int = 512, heads: int = 8) -> None:
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"heads must be a positive divisor of dim={dim}, got {heads}")
        self.dim = dim
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.qk = nn.Linear(dim, 2 * dim, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:
        """Return the ``B x H x N x N`` plan of ``B x N x C`` tokens (rows sum to 1)."""
        b, n, c = tokens.shape
        if c != self.dim:
            raise ValueError(f"expected tokens of width {self.dim}, got {c}")
        qk = self.qk(tokens).reshape(b, n, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key = qk[0], qk[1]
        return (query @ key.transpose(-2, -1) * self.scale).softmax(dim=-1)


def column_importance(plan: Tensor) -> Tensor:
    """Return each token's importance: the mean of a ``... x N x N`` plan over its query axis.

    For a row-stochastic plan ``B x H x N x N`` (softmax over keys) the result ``B x H x N``
    sums to 1 over the tokens.
    """
    return plan.mean(dim=-2)


def cross_modal_weights(w_student: Tensor, w_teacher: Tensor) -> tuple[Tensor, Tensor]:
    """The released cross-modal plan: per-token weights from the outer product of importances.

    With ``K[i, j] = w_S[i] * w_T[j]`` (student token ``i``, teacher token ``j``, per sample and
    head) the code takes ``c_T[j] = mean_i K[i, j] / mean_j w_T[j]`` and
    ``c_S[i] = mean_j K[i, j] / mean_i w_S[i]``. This is computed literally, but when each
    importance vector sums to 1 (as :func:`column_importance` guarantees) it reduces to
    ``c_T = w_T * N_T / N_S`` and ``c_S = w_S * N_S / N_T``: the "cross" product only rescales
    each modality's own importances by a constant, which :func:`reweight_tokens` then cancels
    (reference §6.2, §11.3). Neither modality's weights depend on the other's.

    Args:
        w_student: ``... x N_S`` student token importances.
        w_teacher: ``... x N_T`` teacher token importances (same leading dimensions).

    Returns:
        ``(c_student, c_teacher)`` of shapes ``... x N_S`` and ``... x N_T``.
    """
    outer = w_student.unsqueeze(-1) * w_teacher.unsqueeze(-2)
    c_teacher = outer.mean(dim=-2) / w_teacher.mean(dim=-1, keepdim=True)
    c_student = outer.mean(dim=-1) / w_student.mean(dim=-1, keepdim=True)
    return c_student, c_teacher


def reweight_tokens(tokens: Tensor, weights: Tensor, eps: float = 1e-12) -> Tensor:
    """Re-weight tokens and rescale them so that the norm of their mean token is unchanged.

    ``z'_n = s * a_n * z_n`` with the per-sample scalar
    ``s = ||mean_n z_n|| / ||mean_n a_n z_n||`` (the released code's square root of the ratio of
    squared norms), so ``||mean_n z'_n|| = ||mean_n z_n||`` and a constant factor in ``a``
    cancels.

    Args:
        tokens: ``B x N x C`` tokens ``z``.
        weights: ``B x N`` token weights ``a``.
        eps: Lower bound of the denominator's norm (guards against all-zero weighted means).

    Returns:
        The ``B x N x C`` refined tokens.
    """
    weighted = weights.unsqueeze(-1) * tokens
    norm = torch.linalg.vector_norm(tokens.mean(dim=1), dim=-1)
    weighted_norm = torch.linalg.vector_norm(weighted.mean(dim=1), dim=-1).clamp_min(eps)
    return (norm / weighted_norm)[:, None, None] * weighted


# --- the optimal-transport plan (ablation) --------------------------------------------------


def sinkhorn_plan(
    teacher_tokens: Tensor, student_tokens: Tensor, epsilon: float = 0.1, n_iter: int = 50
) -> Tensor:
    """Entropic optimal-transport plan between student and teacher tokens, per sample.

    Solves ``min_P <P, M> - epsilon * H(P)`` with uniform marginals (rows sum to ``1 / N_S``,
    columns to ``1 / N_T``) and the squared-Euclidean cost ``M`` between L2-normalised tokens
    (so ``M`` lies in ``[0, 4]``), for the whole batch at once with POT's batched log-domain
    Sinkhorn (``ot.batch.solve_batch``). Gradients flow through the iterations (``autodiff``) to
    both token sets. At most ``n_iter`` iterations run; the solver stops earlier once the row
    marginals are within ``1e-6`` (L2); the columns are exact after the last iteration.
    Computed in float32 (float64 when the inputs are) with autocast disabled.

    Args:
        teacher_tokens: ``B x N_T x C`` teacher tokens.
        student_tokens: ``B x N_S x C`` student tokens.
        epsilon: Entropic regularisation (> 0).
        n_iter: Maximum number of Sinkhorn iterations (>= 1).

    Returns:
        The ``B x N_S x N_T`` plan (student token ``i``, teacher token ``j``).

    Raises:
        ValueError: On bad shapes, ``epsilon <= 0`` or ``n_iter < 1``.
    """
    if teacher_tokens.ndim != 3 or student_tokens.ndim != 3:
        raise ValueError("sinkhorn_plan needs B x N x C token tensors")
    if teacher_tokens.shape[0] != student_tokens.shape[0]:
        raise ValueError(
            f"batch sizes differ: {teacher_tokens.shape[0]} teacher vs "
            f"{student_tokens.shape[0]} student"
        )
    if teacher_tokens.shape[2] != student_tokens.shape[2]:
        raise ValueError(
            f"token widths differ: {teacher_tokens.shape[2]} teacher vs "
            f"{student_tokens.shape[2]} student"
        )
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    if n_iter < 1:
        raise ValueError(f"n_iter must be at least 1, got {n_iter}")
    with torch.autocast(device_type=student_tokens.device.type, enabled=False):
        student = F.normalize(_full_precision(student_tokens), dim=-1)
        teacher = F.normalize(_full_precision(teacher_tokens), dim=-1).to(student.dtype)
        cost = ot.batch.dist_batch(student, teacher, metric="sqeuclidean")
        result = ot.batch.solve_batch(
            cost,
            reg=epsilon,
            max_iter=n_iter,
            tol=_SINKHORN_TOL,
            method="log_sinkhorn",
            grad="autodiff",
        )
    plan: Tensor = result.plan
    return plan


# --- token grids ----------------------------------------------------------------------------


def grid_side(num_tokens: int) -> int:
    """Return the side of the square token grid of ``num_tokens`` tokens.

    Raises:
        ValueError: If ``num_tokens`` is not a positive perfect square.
    """
    side = math.isqrt(num_tokens) if num_tokens > 0 else 0
    if side < 1 or side * side != num_tokens:
        raise ValueError(
            f"SKA needs a square token grid, but {num_tokens} tokens are not a perfect square"
        )
    return side


def pool_tokens(tokens: Tensor, side: int) -> Tensor:
    """Average-pool ``B x N x C`` row-major grid tokens to a ``side x side`` grid.

    Uses adaptive average pooling, so a 4 x 4 grid goes to 2 x 2 by averaging 2 x 2 blocks.
    Returns ``tokens`` unchanged when the grid already has that side.
    """
    b, n, c = tokens.shape
    current = grid_side(n)
    if current == side:
        return tokens
    grid = tokens.transpose(1, 2).reshape(b, c, current, current)
    return F.adaptive_avg_pool2d(grid, side).flatten(2).transpose(1, 2)


# --- the module -----------------------------------------------------------------------------


class SemanticAlignment(nn.Module):
    """SemBridge's SKA losses between a frozen teacher's features and the student's.

    Token preparation (both plans): tokens whose width differs from ``dim`` go through a learnable
    bias-free ``Linear(width -> dim)`` (created only for such a width; CORAL ignores constant
    shifts, so a bias would do next to nothing), which lets 1024-wide ShuffleNet tokens meet
    512-wide ones (reference §11.10). When the two token counts differ, the larger square grid is
    average-pooled to the smaller one (§11.11). With 512-wide tokens on equal grids nothing
    changes and ``plan="attention"`` computes exactly what the released code computes.

    ``plan="attention"`` (released): two :class:`TokenAttentionPlan` modules, the teacher's
    ``A_T`` and the student's ``A_S``; :func:`column_importance`, :func:`cross_modal_weights`,
    the mean over heads and :func:`reweight_tokens` refine each modality's tokens; ``L_ot1`` is
    :func:`coral_loss` of the flattened ``B x (N * dim)`` refined tokens. The teacher's inputs are
    detached (the teacher is frozen), but ``A_T`` still learns through its plan, as released.

    ``plan="ot"`` (ablation): an entropic OT plan (:func:`sinkhorn_plan`) between the student's and
    the teacher's tokens replaces both attention plans (no attention modules). Its marginals are
    uniform by construction, so weighting tokens by the plan's row or column sums would be a
    constant; instead each student position receives the barycentre of the teacher tokens it is
    coupled with, ``t_i = sum_j P_ij z_T,j / sum_j P_ij``, and ``L_ot1`` is CORAL between the
    flattened transported teacher tokens and the student tokens. Gradients reach the student
    tokens both directly and through the plan.

    ``L_ot2`` (both plans) is :func:`coral_loss` of the two 512-d embeddings.

    Args:
        teacher_dim: Width of the teacher's tokens (``Backbone.token_dim``).
        student_dim: Width of the student's tokens.
        dim: Width SKA works at (the released ``att_dim``, 512).
        heads: Attention heads (the released ``att_head``, 8); unused by ``plan="ot"``.
        plan: ``"attention"`` (released) or ``"ot"``.
        token_coral: Compute ``L_ot1`` (key ``"ska_tokens"``).
        embedding_coral: Compute ``L_ot2`` (key ``"ska_embedding"``).
        ot_epsilon: Entropic regularisation of ``plan="ot"``.
        ot_iters: Sinkhorn iterations of ``plan="ot"``.

    Raises:
        ValueError: On an unknown plan, non-positive widths, both terms disabled, or ``heads`` not
            dividing ``dim``.
    """

    def __init__(
        self,
        teacher_dim: int,
        student_dim: int,
        dim: int = 512,
        heads: int = 8,
        plan: PlanKind = "attention",
        token_coral: bool = True,
        embedding_coral: bool = True,
        ot_epsilon: float = 0.1,
        ot_iters: int = 50,
    ) -> None:
        super().__init__()
        if plan not in PLAN_KINDS:
            raise ValueError(f"plan must be one of {PLAN_KINDS}, got {plan!r}")
        if min(teacher_dim, student_dim, dim) < 1:
            raise ValueError(
                f"token widths must be positive, got teacher_dim={teacher_dim}, "
                f"student_dim={student_dim}, dim={dim}"
            )
        if not (token_coral or embedding_coral):
            raise ValueError("SemanticAlignment needs token_coral or embedding_coral enabled")
        self.teacher_dim = teacher_dim
        self.student_dim = student_dim
        self.dim = dim
        self.plan = plan
        self.token_coral = token_coral
        self.embedding_coral = embedding_coral
        self.ot_epsilon = ot_epsilon
        self.ot_iters = ot_iters
        self.teacher_projection: nn.Linear | None = None
        self.student_projection: nn.Linear | None = None
        self.teacher_plan: TokenAttentionPlan | None = None
        self.student_plan: TokenAttentionPlan | None = None
        if token_coral:
            if teacher_dim != dim:
                self.teacher_projection = nn.Linear(teacher_dim, dim, bias=False)
            if student_dim != dim:
                self.student_projection = nn.Linear(student_dim, dim, bias=False)
            if plan == "attention":
                self.teacher_plan = TokenAttentionPlan(dim, heads)
                self.student_plan = TokenAttentionPlan(dim, heads)

    def forward(self, teacher: Features, student: Features) -> dict[str, Tensor]:
        """Return the unweighted SKA losses of one batch.

        Args:
            teacher: The frozen teacher's features (detached here).
            student: The student's features.

        Returns:
            ``{"ska_tokens": L_ot1, "ska_embedding": L_ot2}``, only the enabled terms.

        Raises:
            ValueError: If token widths differ from the configured ones, token counts are not
                perfect squares, or batch sizes or embedding widths differ.
        """
        losses: dict[str, Tensor] = {}
        if self.token_coral:
            teacher_tokens, student_tokens = self._prepare_tokens(
                teacher.tokens.detach(), student.tokens
            )
            if self.plan == "attention":
                refined_teacher, refined_student = self._attention_refine(
                    teacher_tokens, student_tokens
                )
            else:
                refined_teacher, refined_student = self._transport(teacher_tokens, student_tokens)
            losses["ska_tokens"] = coral_loss(
                refined_teacher.flatten(1), refined_student.flatten(1)
            )
        if self.embedding_coral:
            losses["ska_embedding"] = coral_loss(teacher.embedding.detach(), student.embedding)
        return losses

    def _prepare_tokens(self, teacher: Tensor, student: Tensor) -> tuple[Tensor, Tensor]:
        """Check widths, pool to the smaller grid, project to ``dim``."""
        for name, tokens, width in (
            ("teacher", teacher, self.teacher_dim),
            ("student", student, self.student_dim),
        ):
            if tokens.ndim != 3 or tokens.shape[2] != width:
                raise ValueError(
                    f"expected {name} tokens B x N x {width}, got {tuple(tokens.shape)}"
                )
        if teacher.shape[0] != student.shape[0]:
            raise ValueError(
                f"batch sizes differ: {teacher.shape[0]} teacher vs {student.shape[0]} student"
            )
        side = min(grid_side(teacher.shape[1]), grid_side(student.shape[1]))
        teacher = pool_tokens(teacher, side)
        student = pool_tokens(student, side)
        if self.teacher_projection is not None:
            teacher = self.teacher_projection(teacher)
        if self.student_projection is not None:
            student = self.student_projection(student)
        return teacher, student

    def _attention_refine(self, teacher: Tensor, student: Tensor) -> tuple[Tensor, Tensor]:
        """The released refinement: attention plans, cross-modal weights, re-weighting."""
        assert self.teacher_plan is not None and self.student_plan is not None
        w_teacher = column_importance(self.teacher_plan(teacher))
        w_student = column_importance(self.student_plan(student))
        c_student, c_teacher = cross_modal_weights(w_student, w_teacher)
        refined_teacher = reweight_tokens(teacher, c_teacher.mean(dim=1))
        refined_student = reweight_tokens(student, c_student.mean(dim=1))
        return refined_teacher, refined_student

    def _transport(self, teacher: Tensor, student: Tensor) -> tuple[Tensor, Tensor]:
        """Barycentric transport of the teacher's tokens onto the student's positions."""
        plan = sinkhorn_plan(teacher, student, self.ot_epsilon, self.ot_iters)
        transported = (plan @ teacher.to(plan.dtype)) / plan.sum(dim=-1, keepdim=True)
        return transported, student
