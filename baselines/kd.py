"""``kd``: vanilla knowledge distillation (Hinton, Vinyals & Dean, arXiv:1503.02531, 2015)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from torch import Tensor

from msrgb_bench.baselines.base import DistillationTerm, MethodConfig, StepOutputs
from msrgb_bench.baselines.losses import kd_kl_div
from msrgb_bench.baselines.registry import register_method


@dataclass(frozen=True, kw_only=True)
class KDConfig(MethodConfig):
    """Vanilla KD settings.

    Presets: ``paper`` is the ACKD code's "CKD" (T = 3, no ``T**2`` factor, CE 0.3, KD 0.4);
    ``original`` is the standard reading of Hinton et al. used by mdistiller and CRD
    (T = 4 with the ``T**2`` factor, CE 0.1, KD 0.9).

    Attributes:
        kd_weight: Weight of the soft-target loss.
        temperature: Softening temperature.
        scale_by_t2: Multiply the KL divergence by ``T**2``.
    """

    kd_weight: float
    temperature: float
    scale_by_t2: bool

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")

    @classmethod
    def presets(cls) -> dict[str, Self]:
        """Return the ``paper`` and ``original`` presets."""
        return {
            "paper": cls(ce_weight=0.3, kd_weight=0.4, temperature=3.0, scale_by_t2=False),
            "original": cls(ce_weight=0.1, kd_weight=0.9, temperature=4.0, scale_by_t2=True),
        }


@register_method("kd", KDConfig)
class KDTerm(DistillationTerm):
    """``kd_weight * KL(softmax(t/T) || softmax(s/T))`` on the paired teacher's logits."""

    config: KDConfig

    def __init__(self, config: KDConfig) -> None:
        super().__init__(config)

    def forward(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return ``{"kd": ...}``."""
        _, teacher_logits = out.require_teacher()
        cfg = self.config
        loss = kd_kl_div(out.student_logits, teacher_logits, cfg.temperature, cfg.scale_by_t2)
        return {"kd": cfg.kd_weight * loss}
