"""Frozen, JSON-serialisable configs of training runs and their hash.

A run's config holds everything that defines the experiment (architecture, dataset content hash,
method and its resolved settings, optimisation). Paths (dataset folder, teacher run folder) are
not part of it: the same experiment on another machine has the same hash. They are recorded in the
run's ``run.json`` instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

TEACHER_KIND = "teacher"
STUDENT_KIND = "student"
MATCHER_KIND = "matcher"
RUN_KINDS = (TEACHER_KIND, STUDENT_KIND, MATCHER_KIND)


@dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    """Optimisation and execution settings shared by teacher and student runs.

    The defaults are the ACKD paper's protocol: Adam, lr 1e-3, no weight decay, no schedule,
    200 epochs, batch 256, seed 42, no data augmentation.

    Attributes:
        epochs: Number of epochs.
        batch_size: Global batch size (split evenly over the DDP processes).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        seed: Seed of weights, pairing and data order.
        augment: Random flips and 90-degree rotations of training batches.
        num_workers: DataLoader worker processes per device.
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``...).
        devices: Lightning devices (``auto``, a count such as ``2``, or ids ``0,1``).
        strategy: Lightning strategy (``auto``, ``ddp``, ``ddp_spawn``...).
        precision: Lightning precision (``32-true``, ``bf16-mixed``, ``16-mixed``...).
        train_batches: Train on at most this many (shuffled) batches per epoch; ``None`` for
            all (Lightning's ``limit_train_batches``, used by small CPU protocols).
        precise_bn_batches: Before each validation, recompute the trained network's BatchNorm
            statistics as exact averages over this many training batches (PreciseBN, Wu &
            Johnson, "Rethinking Batch in BatchNorm", 2021); 0 keeps the running averages, as
            the paper's protocol does. Short runs need it: after a few dozen Adam steps the
            running variances still lag far behind the weights and eval-mode outputs collapse.
    """

    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 42
    augment: bool = False
    num_workers: int = 0
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    precision: str = "32-true"
    train_batches: int | None = None
    precise_bn_batches: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.train_batches is not None and self.train_batches < 1:
            raise ValueError(f"train_batches must be at least 1, got {self.train_batches}")
        if self.precise_bn_batches < 0:
            raise ValueError(f"precise_bn_batches must be >= 0, got {self.precise_bn_batches}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")


@dataclass(frozen=True, kw_only=True)
class DatasetRef:
    """Which dataset a run used, by content rather than by path.

    Attributes:
        name: The dataset's recipe name.
        content_hash: ``dataset.json``'s ``content_hash``.
        classes: Class names in index order.
        multilabel: Whether teacher samples are multi-label.
    """

    name: str
    content_hash: str
    classes: tuple[str, ...]
    multilabel: bool


@dataclass(frozen=True, kw_only=True)
class TeacherRunConfig:
    """Config of a teacher run: one backbone trained on the MS chips.

    Attributes:
        arch: Backbone name.
        bands: MS bands the teacher sees, in input order.
        dataset: The dataset.
        trainer: Optimisation and execution settings.
        kind: Always ``"teacher"``.
    """

    arch: str
    bands: tuple[str, ...]
    dataset: DatasetRef
    trainer: TrainerConfig
    kind: str = TEACHER_KIND


@dataclass(frozen=True, kw_only=True)
class StudentRunConfig:
    """Config of a student run: an RGB backbone distilled from a teacher run.

    Attributes:
        arch: Student backbone name.
        rgb_bands: Student input bands.
        teacher_arch: The teacher's backbone.
        teacher_bands: The teacher's MS bands.
        teacher_config_hash: The teacher run's config hash.
        method: Method name (``kd``, ``dkd+sembridge``...).
        preset: Preset of the method's configs.
        method_config: The distiller's resolved configuration (configs of method and term).
        pairing: How the initial teacher partners were chosen.
        dataset: The dataset.
        trainer: Optimisation and execution settings.
        kind: Always ``"student"``.
    """

    arch: str
    rgb_bands: tuple[str, ...]
    teacher_arch: str
    teacher_bands: tuple[str, ...]
    teacher_config_hash: str
    method: str
    preset: str
    method_config: dict[str, Any] = field(default_factory=dict)
    pairing: str
    dataset: DatasetRef
    trainer: TrainerConfig
    kind: str = STUDENT_KIND


@dataclass(frozen=True, kw_only=True)
class MatcherRunConfig:
    """Config of a matcher run: SemBridge's two-tower MS / pseudo-RGB matcher (SSM).

    Trained with AdamW (``trainer.lr``, ``trainer.weight_decay``) and the soft-target CLIP loss;
    the best checkpoint has the lowest validation loss.

    Attributes:
        arch: Backbone name of both towers.
        bands: MS bands the MS tower sees, in input order.
        pseudo_rgb: How pseudo-RGB is made (``"rgb"`` or ``"first3"``).
        pseudo_rgb_bands: The MS bands that become red, green and blue.
        proj_dim: Width of the projected embeddings.
        temperature: The loss temperature.
        dataset: The dataset.
        trainer: Optimisation and execution settings.
        kind: Always ``"matcher"``.
    """

    arch: str
    bands: tuple[str, ...]
    pseudo_rgb: str
    pseudo_rgb_bands: tuple[str, ...]
    proj_dim: int
    temperature: float
    dataset: DatasetRef
    trainer: TrainerConfig
    kind: str = MATCHER_KIND


RunConfig = TeacherRunConfig | StudentRunConfig | MatcherRunConfig


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Return a run config as a JSON-ready dict (tuples become lists)."""
    data: dict[str, Any] = json.loads(json.dumps(asdict(config)))
    return data


def config_hash(config: RunConfig | dict[str, Any]) -> str:
    """Return the sha256 of a config's canonical JSON (sorted keys, no whitespace)."""
    data = config if isinstance(config, dict) else config_to_dict(config)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
