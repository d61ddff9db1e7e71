"""``ctkd``: curriculum temperature for knowledge distillation (Li et al., AAAI 2023).

A single learnable scalar ``g`` sets the temperature ``tau = start + range * sigmoid(g)``. It is
trained adversarially: a gradient-reversal layer multiplies its gradient by
``lambda(epoch) <= 0``, which ramps by a cosine from 0 to -1, so ``tau`` ascends the KD loss the
student descends (a curriculum from easy to hard). Unlike the ACKD code, where the temperature
module is never created, the temperature here exists, is trained and is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import torch
from torch import Tensor, nn

from msrgb_bench.baselines.base import DistillationTerm, MethodConfig, StepOutputs
from msrgb_bench.baselines.losses import cosine_schedule, gradient_reversal, kd_kl_div
from msrgb_bench.baselines.registry import register_method


@dataclass(frozen=True, kw_only=True)
class CTKDConfig(MethodConfig):
    """CTKD settings (global temperature).

    Presets: ``paper`` is the ACKD code (no ``T**2`` factor, lambda reaches -1 after 5 epochs,
    CE 0.3, KD 0.4); ``original`` is CTKD's CIFAR script (``T**2``, 10 epochs, CE 0.1, KD 0.9).
    Both use ``tau = 1 + 20 * sigmoid(g)`` with ``g`` initialised to 1.

    Attributes:
        kd_weight: Weight of the KD loss.
        temperature_min: ``start`` of ``tau = start + range * sigmoid(g)``.
        temperature_range: ``range`` of the same formula.
        init_logit: Initial value of ``g``.
        reversal_epochs: Epochs over which ``lambda`` ramps from 0 to -1.
        scale_by_t2: Multiply the KL divergence by ``tau**2``.
    """

    kd_weight: float
    temperature_min: float
    temperature_range: float
    init_logit: float
    reversal_epochs: int
    scale_by_t2: bool

    def __post_init__(self) -> None:
        if self.temperature_min <= 0 or self.temperature_range < 0:
            raise ValueError("temperature_min must be positive and temperature_range >= 0")
        if self.reversal_epochs < 0:
            raise ValueError(f"reversal_epochs must be >= 0, got {self.reversal_epochs}")

    @classmethod
    def presets(cls) -> dict[str, Self]:
        """Return the ``paper`` and ``original`` presets."""
        common = {"temperature_min": 1.0, "temperature_range": 20.0, "init_logit": 1.0}
        return {
            "paper": cls(
                ce_weight=0.3, kd_weight=0.4, reversal_epochs=5, scale_by_t2=False, **common
            ),
            "original": cls(
                ce_weight=0.1, kd_weight=0.9, reversal_epochs=10, scale_by_t2=True, **common
            ),
        }

    def reversal_factor(self, epoch: int) -> float:
        """Return ``lambda`` of 0-based ``epoch``: 0 at epoch 0, -1 from ``reversal_epochs`` on."""
        return cosine_schedule(epoch, self.reversal_epochs, start=0.0, end=-1.0)


@register_method("ctkd", CTKDConfig)
class CTKDTerm(DistillationTerm):
    """KD with the learnable, adversarially trained global temperature."""

    config: CTKDConfig

    def __init__(self, config: CTKDConfig) -> None:
        super().__init__(config)
        self.temperature_logit = nn.Parameter(torch.tensor(float(config.init_logit)))

    def temperature(self, reversal: float = 0.0) -> Tensor:
        """Return ``tau`` as a tensor; its gradient to the logit is scaled by ``reversal``."""
        cfg = self.config
        logit = gradient_reversal(self.temperature_logit, reversal)
        return cfg.temperature_min + cfg.temperature_range * torch.sigmoid(logit)

    def forward(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return ``{"kd": ...}``."""
        _, teacher_logits = out.require_teacher()
        cfg = self.config
        tau = self.temperature(cfg.reversal_factor(out.epoch))
        loss = kd_kl_div(out.student_logits, teacher_logits, tau, cfg.scale_by_t2)
        return {"kd": cfg.kd_weight * loss}

    def metrics(self) -> dict[str, Tensor]:
        """Return the current temperature."""
        return {"temperature": self.temperature().detach()}
