"""The training engine: Lightning modules, run folders, checkpoints and the entry points.

* :func:`train_teacher` trains an MS teacher run; :func:`distill` trains an RGB student with a
  registered method and a frozen teacher run; :func:`predict` writes a run's predictions in the
  leaderboard's submission format.
* Runs run on CPU, one GPU or several with DDP through ``TrainerConfig(devices=..., strategy=...,
  precision=...)``.
* A run folder holds the resolved config and its hash, the seed and versions, per-epoch metrics
  and two safetensors checkpoints: ``best`` (on the validation split) and ``last``.

Names are imported on first use, so ``msrgb_bench.engine.modules`` can be used without the data
stack (torchgeo, kornia) that the entry points need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from msrgb_bench.engine.config import StudentRunConfig, TeacherRunConfig, TrainerConfig
    from msrgb_bench.engine.modules import ClassifierModule, DistillationModule
    from msrgb_bench.engine.prediction import predict
    from msrgb_bench.engine.runs import Run, load_run
    from msrgb_bench.engine.train import distill, train_teacher

_LAZY: dict[str, str] = {
    "ClassifierModule": "msrgb_bench.engine.modules",
    "DistillationModule": "msrgb_bench.engine.modules",
    "Run": "msrgb_bench.engine.runs",
    "StudentRunConfig": "msrgb_bench.engine.config",
    "TeacherRunConfig": "msrgb_bench.engine.config",
    "TrainerConfig": "msrgb_bench.engine.config",
    "distill": "msrgb_bench.engine.train",
    "load_run": "msrgb_bench.engine.runs",
    "predict": "msrgb_bench.engine.prediction",
    "train_teacher": "msrgb_bench.engine.train",
}

__all__ = [
    "ClassifierModule",
    "DistillationModule",
    "Run",
    "StudentRunConfig",
    "TeacherRunConfig",
    "TrainerConfig",
    "distill",
    "load_run",
    "predict",
    "train_teacher",
]


def __getattr__(name: str) -> Any:
    """Import the public names on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'msrgb_bench.engine' has no attribute {name!r}")
