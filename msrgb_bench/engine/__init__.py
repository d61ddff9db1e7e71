"""The training engine: Lightning modules, run folders, checkpoints and the entry points.

* :func:`train_teacher` trains an MS teacher run; :func:`distill` trains an RGB student with a
  registered method and a frozen teacher run; :func:`predict` writes a run's predictions in the
  leaderboard's submission format.
* Runs run on CPU, one GPU or several with DDP through ``TrainerConfig(devices=..., strategy=...,
  precision=...)``.
* A run folder holds the resolved config and its hash, the seed and versions, per-epoch metrics
  and two safetensors checkpoints: ``best`` (on the validation split) and ``last``.
"""

from __future__ import annotations

from msrgb_bench.engine.config import StudentRunConfig, TeacherRunConfig, TrainerConfig
from msrgb_bench.engine.modules import ClassifierModule, DistillationModule
from msrgb_bench.engine.predict import predict
from msrgb_bench.engine.runs import Run, load_run
from msrgb_bench.engine.train import distill, train_teacher

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
