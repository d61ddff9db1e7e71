"""``dkd``: decoupled knowledge distillation (Zhao et al., CVPR 2022)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from torch import Tensor

from msrgb_bench.baselines.base import DistillationTerm, MethodConfig, StepOutputs
from msrgb_bench.baselines.losses import dkd_loss
from msrgb_bench.baselines.registry import register_method


@dataclass(frozen=True, kw_only=True)
class DKDConfig(MethodConfig):
    """DKD settings.

    Presets: ``paper`` is the ACKD code (alpha 1, beta 8, T 4, 20 warm-up epochs, CE 0.3,
    KD 0.4); ``original`` is DKD's CIFAR-100 setting in mdistiller (same alpha/beta/T/warm-up,
    CE 1, KD 1).

    Attributes:
        kd_weight: Weight of the DKD loss.
        alpha: Weight of the target-class term (TCKD).
        beta: Weight of the non-target term (NCKD).
        temperature: Softening temperature.
        warmup_epochs: The loss is scaled by ``min((epoch + 1) / warmup_epochs, 1)`` with 0-based
            epochs (mdistiller counts epochs from 1 and uses ``min(epoch / warmup, 1)``).
    """

    kd_weight: float
    alpha: float
    beta: float
    temperature: float
    warmup_epochs: int

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")

    @classmethod
    def presets(cls) -> dict[str, Self]:
        """Return the ``paper`` and ``original`` presets."""
        return {
            "paper": cls(
                ce_weight=0.3, kd_weight=0.4, alpha=1.0, beta=8.0, temperature=4.0, warmup_epochs=20
            ),
            "original": cls(
                ce_weight=1.0, kd_weight=1.0, alpha=1.0, beta=8.0, temperature=4.0, warmup_epochs=20
            ),
        }

    def warmup_factor(self, epoch: int) -> float:
        """Return the warm-up factor of 0-based ``epoch``."""
        if self.warmup_epochs == 0:
            return 1.0
        return min((epoch + 1) / self.warmup_epochs, 1.0)


@register_method("dkd", DKDConfig)
class DKDTerm(DistillationTerm):
    """``kd_weight * warm-up * (alpha * TCKD + beta * NCKD)`` with the pair's label as target."""

    config: DKDConfig

    def __init__(self, config: DKDConfig) -> None:
        super().__init__(config)

    def forward(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return ``{"dkd": ...}``."""
        _, teacher_logits = out.require_teacher()
        cfg = self.config
        loss = dkd_loss(
            out.student_logits, teacher_logits, out.labels, cfg.alpha, cfg.beta, cfg.temperature
        )
        return {"dkd": cfg.kd_weight * cfg.warmup_factor(out.epoch) * loss}
