"""``logits``: regression on the teacher's logits (Ba & Caruana, NeurIPS 2014).

Paper: "Do Deep Nets Really Need to be Deep?".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Self

from torch import Tensor

from msrgb_bench.baselines.base import DistillationTerm, MethodConfig, StepOutputs
from msrgb_bench.baselines.losses import logit_mse
from msrgb_bench.baselines.registry import register_method


@dataclass(frozen=True, kw_only=True)
class LogitsConfig(MethodConfig):
    """Logit-regression settings.

    Presets: ``paper`` is the ACKD code (``0.01 * MSELoss``, mean over classes, CE 0.3, KD 0.4);
    ``original`` is Ba & Caruana's mimic learning (``1/2 * ||s - t||^2`` summed over classes,
    no label loss).

    Attributes:
        kd_weight: Weight of the regression loss.
        loss_scale: Factor inside the regression loss.
        class_reduction: ``"mean"`` or ``"sum"`` of the squared error over classes.
    """

    kd_weight: float
    loss_scale: float
    class_reduction: Literal["mean", "sum"]

    def __post_init__(self) -> None:
        if self.class_reduction not in ("mean", "sum"):
            raise ValueError(
                f"class_reduction must be 'mean' or 'sum', got {self.class_reduction!r}"
            )

    @classmethod
    def presets(cls) -> dict[str, Self]:
        """Return the ``paper`` and ``original`` presets."""
        return {
            "paper": cls(ce_weight=0.3, kd_weight=0.4, loss_scale=0.01, class_reduction="mean"),
            "original": cls(ce_weight=0.0, kd_weight=1.0, loss_scale=0.5, class_reduction="sum"),
        }


@register_method("logits", LogitsConfig)
class LogitsTerm(DistillationTerm):
    """``kd_weight * loss_scale * squared error`` between raw student and teacher logits."""

    config: LogitsConfig

    def __init__(self, config: LogitsConfig) -> None:
        super().__init__(config)

    def forward(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return ``{"logit_mse": ...}``."""
        _, teacher_logits = out.require_teacher()
        cfg = self.config
        loss = logit_mse(out.student_logits, teacher_logits, cfg.class_reduction)
        return {"logit_mse": cfg.kd_weight * cfg.loss_scale * loss}
