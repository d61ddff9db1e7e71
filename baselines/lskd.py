"""``lskd``: KD with logit standardisation (Sun et al., CVPR 2024).

Paper: "Logit Standardization in Knowledge Distillation".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from torch import Tensor

from msrgb_bench.baselines.base import DistillationTerm, MethodConfig, StepOutputs
from msrgb_bench.baselines.losses import kd_kl_div, standardize_logits
from msrgb_bench.baselines.registry import register_method


@dataclass(frozen=True, kw_only=True)
class LSKDConfig(MethodConfig):
    """LS-KD settings.

    Presets: ``paper`` is the ACKD code (T 3 with ``T**2``, CE 0.3, KD 0.4); ``original`` is the
    LS-KD code's KD+LS command (base temperature 2, KD weight 9, CE 0.1).

    Attributes:
        kd_weight: Weight of the KD loss.
        temperature: Base temperature applied to the standardised logits.
        eps: Added to the standard deviation.
    """

    kd_weight: float
    temperature: float
    eps: float = 1e-7

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")

    @classmethod
    def presets(cls) -> dict[str, Self]:
        """Return the ``paper`` and ``original`` presets."""
        return {
            "paper": cls(ce_weight=0.3, kd_weight=0.4, temperature=3.0),
            "original": cls(ce_weight=0.1, kd_weight=9.0, temperature=2.0),
        }


@register_method("lskd", LSKDConfig)
class LSKDTerm(DistillationTerm):
    """``kd_weight * T**2 * KL(softmax(z(t)/T) || softmax(z(s)/T))`` with z-scored logits ``z``."""

    config: LSKDConfig

    def __init__(self, config: LSKDConfig) -> None:
        super().__init__(config)

    def forward(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return ``{"kd": ...}``."""
        _, teacher_logits = out.require_teacher()
        cfg = self.config
        loss = kd_kl_div(
            standardize_logits(out.student_logits, cfg.eps),
            standardize_logits(teacher_logits, cfg.eps),
            cfg.temperature,
            scale_by_t2=True,
        )
        return {"kd": cfg.kd_weight * loss}
