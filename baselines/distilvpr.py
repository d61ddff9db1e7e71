"""``distilvpr``: DistilVPR (Wang et al., AAAI 2024) on the 512-d embeddings.

Paper: "DistilVPR: Cross-Modal Knowledge Distillation for Visual Place Recognition".

Self-agent: "RKD-G", the RKD distance and angle losses plus a geodesic-distance loss in the
Poincaré ball. Cross-agent: on L2-normalised embeddings, the student-student relation matrices
(Euclidean distance, cosine similarity, geodesic distance) regress onto the detached
student-teacher ones, and the student-teacher ones onto the detached teacher-teacher ones.
Hyperbolic operations come from :mod:`geoopt` (the released code uses hyptorch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from torch import Tensor

from msrgb_bench.baselines.base import DistillationTerm, MethodConfig, StepOutputs
from msrgb_bench.baselines.losses import cross_agent_losses, rkdg_loss
from msrgb_bench.baselines.registry import register_method


@dataclass(frozen=True, kw_only=True)
class DistilVPRConfig(MethodConfig):
    """DistilVPR settings.

    Presets: ``paper`` is the ACKD code's copy (RKD-G x 10, every cross-agent term 0.1, curvature
    0.1, CE 0.3, KD 0.4); ``original`` is DistilVPR's Oxford command (RKD-G x 10, student-side
    cross-agent terms 0.1, teacher-side 0, task loss 1).

    Attributes:
        kd_weight: Weight of the whole distillation loss.
        rkdg_weight: Weight of the self-agent RKD-G loss.
        rkdg_distance_weight: RKD-G distance weight.
        rkdg_angle_weight: RKD-G angle weight.
        rkdg_geodesic_weight: RKD-G geodesic-distance weight.
        cross_student_weight: Weight of ``MSE(SS, sg(ST))`` per relation.
        cross_teacher_weight: Weight of ``MSE(ST, sg(TT))`` per relation.
        curvature: Curvature ``c`` of the Poincaré ball.
    """

    kd_weight: float
    rkdg_weight: float
    rkdg_distance_weight: float
    rkdg_angle_weight: float
    rkdg_geodesic_weight: float
    cross_student_weight: float
    cross_teacher_weight: float
    curvature: float

    def __post_init__(self) -> None:
        if self.curvature <= 0:
            raise ValueError(f"curvature must be positive, got {self.curvature}")

    @classmethod
    def presets(cls) -> dict[str, Self]:
        """Return the ``paper`` and ``original`` presets."""
        common = {
            "rkdg_weight": 10.0,
            "rkdg_distance_weight": 1.0,
            "rkdg_angle_weight": 1.0,
            "rkdg_geodesic_weight": 1.0,
            "cross_student_weight": 0.1,
            "curvature": 0.1,
        }
        return {
            "paper": cls(ce_weight=0.3, kd_weight=0.4, cross_teacher_weight=0.1, **common),
            "original": cls(ce_weight=1.0, kd_weight=1.0, cross_teacher_weight=0.0, **common),
        }


@register_method("distilvpr", DistilVPRConfig)
class DistilVPRTerm(DistillationTerm):
    """Self-agent RKD-G plus the three cross-agent relation losses."""

    config: DistilVPRConfig

    def __init__(self, config: DistilVPRConfig) -> None:
        super().__init__(config)

    def forward(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return ``rkdg``, ``cross_distance``, ``cross_similarity`` and ``cross_geodesic``."""
        teacher, _ = out.require_teacher()
        cfg = self.config
        student_emb, teacher_emb = out.student.embedding, teacher.embedding
        rkdg = rkdg_loss(
            student_emb,
            teacher_emb,
            cfg.curvature,
            cfg.rkdg_distance_weight,
            cfg.rkdg_angle_weight,
            cfg.rkdg_geodesic_weight,
        )
        losses = {"rkdg": cfg.kd_weight * cfg.rkdg_weight * rkdg}
        cross = cross_agent_losses(
            student_emb,
            teacher_emb,
            cfg.curvature,
            cfg.cross_student_weight,
            cfg.cross_teacher_weight,
        )
        for name, value in cross.items():
            losses[f"cross_{name}"] = cfg.kd_weight * value
        return losses
