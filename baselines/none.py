"""``none``: the student trained on its labels only, the baseline every table needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from msrgb_bench.baselines.base import Distiller, MethodConfig
from msrgb_bench.baselines.registry import register_method


@dataclass(frozen=True, kw_only=True)
class NoneConfig(MethodConfig):
    """Label-only training: cross-entropy with weight 1 in both presets."""

    @classmethod
    def presets(cls) -> dict[str, Self]:
        """Return the ``paper`` and ``original`` presets (identical)."""
        return {"paper": cls(ce_weight=1.0), "original": cls(ce_weight=1.0)}


@register_method("none", NoneConfig)
class LabelsOnly(Distiller):
    """A distiller without a distillation term: the teacher is held but never run."""
