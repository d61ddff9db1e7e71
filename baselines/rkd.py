"""``rkd``: relational knowledge distillation (Park et al., CVPR 2019) on the 512-d embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from torch import Tensor

from msrgb_bench.baselines.base import DistillationTerm, MethodConfig, StepOutputs
from msrgb_bench.baselines.losses import rkd_angle_loss, rkd_distance_loss
from msrgb_bench.baselines.registry import register_method


@dataclass(frozen=True, kw_only=True)
class RKDConfig(MethodConfig):
    """RKD settings.

    Presets: ``paper`` is the ACKD code (``0.1 * (25 L_dist + 50 L_angle)``, CE 0.3, KD 0.4),
    *without* its bug: the student's embeddings are not detached, so RKD trains the student.
    ``original`` is Park et al. as run by mdistiller (25 / 50, CE 1).

    Attributes:
        kd_weight: Weight of the whole RKD loss.
        loss_scale: Factor inside the RKD loss.
        distance_weight: Weight of the distance term.
        angle_weight: Weight of the angle term.
    """

    kd_weight: float
    loss_scale: float
    distance_weight: float
    angle_weight: float

    @classmethod
    def presets(cls) -> dict[str, Self]:
        """Return the ``paper`` and ``original`` presets."""
        return {
            "paper": cls(
                ce_weight=0.3,
                kd_weight=0.4,
                loss_scale=0.1,
                distance_weight=25.0,
                angle_weight=50.0,
            ),
            "original": cls(
                ce_weight=1.0,
                kd_weight=1.0,
                loss_scale=1.0,
                distance_weight=25.0,
                angle_weight=50.0,
            ),
        }


@register_method("rkd", RKDConfig)
class RKDTerm(DistillationTerm):
    """Distance- and angle-wise relations of student vs. teacher embeddings in a batch."""

    config: RKDConfig

    def __init__(self, config: RKDConfig) -> None:
        super().__init__(config)

    def forward(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return ``{"rkd_distance": ..., "rkd_angle": ...}``."""
        teacher, _ = out.require_teacher()
        cfg = self.config
        scale = cfg.kd_weight * cfg.loss_scale
        student_emb, teacher_emb = out.student.embedding, teacher.embedding
        return {
            "rkd_distance": scale
            * cfg.distance_weight
            * rkd_distance_loss(student_emb, teacher_emb),
            "rkd_angle": scale * cfg.angle_weight * rkd_angle_loss(student_emb, teacher_emb),
        }
