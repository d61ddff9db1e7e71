"""Entry points that train: ``train_teacher`` (MS teacher) and ``distill`` (RGB student)."""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightning as L  # noqa: N812  (Lightning's convention)
from lightning.pytorch.callbacks import Callback

from msrgb_bench.baselines import create_method
from msrgb_bench.data.datamodule import MSRGBDataModule
from msrgb_bench.data.manifest import DatasetInfo, read_info
from msrgb_bench.engine.callbacks import MONITOR, RunRecorder
from msrgb_bench.engine.checkpoint import read_metadata
from msrgb_bench.engine.config import (
    DatasetRef,
    RunConfig,
    StudentRunConfig,
    TeacherRunConfig,
    TrainerConfig,
    config_hash,
)
from msrgb_bench.engine.modules import ClassifierModule, DistillationModule, TrainingModule
from msrgb_bench.engine.runs import (
    TEACHER_KIND,
    check_new_run,
    checkpoint_path,
    code_version,
    finish_run,
    load_run,
    staging_dir,
    versions,
    write_config,
)
from msrgb_bench.engine.trainer import build_trainer, per_device_batch_size
from msrgb_bench.errors import RunFolderError
from msrgb_bench.models import create_model


class _FreshStaging(Callback):
    """Empty the staging folder once, on rank 0, before anything is written into it."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)


def dataset_ref(info: DatasetInfo) -> DatasetRef:
    """Return the content-based reference to a dataset that run configs record."""
    return DatasetRef(
        name=info.recipe,
        content_hash=info.content_hash,
        classes=tuple(info.classes),
        multilabel=info.multilabel,
    )


def default_teacher_bands(info: DatasetInfo) -> tuple[str, ...]:
    """Return the recipe's default teacher bands, or every MS band."""
    bands = info.extra.get("teacher_default_bands") if isinstance(info.extra, dict) else None
    return tuple(bands) if bands else tuple(info.ms_bands)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fit_run(
    config: RunConfig,
    module: TrainingModule,
    data: Path,
    modality: str,
    bands: tuple[str, ...] | None,
    out: Path,
    progress: bool,
    extra_info: Mapping[str, Any],
    *,
    datamodule_cls: Callable[..., MSRGBDataModule] = MSRGBDataModule,
    monitor: str = MONITOR,
    mode: str = "max",
) -> Path:
    """Train ``module`` into the run folder ``out`` (see :mod:`msrgb_bench.engine.runs`).

    ``datamodule_cls`` is called like :class:`MSRGBDataModule`; the best checkpoint has the
    highest (``mode="max"``) or lowest (``"min"``) epoch value of ``monitor``.
    """
    train = config.trainer
    staging = staging_dir(out)
    digest = config_hash(config)
    recorder = RunRecorder(staging, digest, monitor, mode)
    trainer = build_trainer(train, staging, [_FreshStaging(staging), recorder], progress)
    datamodule = datamodule_cls(
        data,
        modality=modality,
        bands=bands,
        batch_size=per_device_batch_size(train.batch_size, trainer.world_size),
        num_workers=train.num_workers,
        seed=train.seed,
        augment=train.augment,
    )
    started = _now()
    clock = time.perf_counter()
    with warnings.catch_warnings():
        # The frozen teacher is in eval mode on purpose.
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
        trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - clock
    if not trainer.is_global_zero:
        return out
    write_config(staging, config)
    summary = {}
    for which in ("best", "last"):
        meta = read_metadata(checkpoint_path(staging, which))
        summary[which] = {"epoch": int(meta["epoch"]), monitor: float(meta[monitor])}
    predictor = module.predictor()
    info = {
        "kind": config.kind,
        "config_hash": digest,
        "seed": train.seed,
        "code_version": code_version(),
        "versions": versions(),
        "data_dir": str(data.resolve()),
        "started": started,
        "finished": _now(),
        "train_seconds": round(seconds, 3),
        "world_size": trainer.world_size,
        "accelerator": type(trainer.accelerator).__name__,
        "param_count": sum(p.numel() for p in predictor.parameters()),
        "extra_param_count": sum(p.numel() for p in module.trainable())
        - sum(p.numel() for p in predictor.parameters()),
        "checkpoint_rule": f"best {monitor} on the val split; last after the final epoch",
        **summary,
        **extra_info,
    }
    return finish_run(staging, out, info)


def train_teacher(
    data: str | Path,
    arch: str,
    out: str | Path,
    *,
    bands: tuple[str, ...] | None = None,
    trainer: TrainerConfig | None = None,
    progress: bool = True,
) -> Path:
    """Train a teacher backbone on the MS chips of a dataset folder.

    Cross-entropy on ``label``, or BCE on the multi-hot ``labels`` of a multi-label dataset.
    The best checkpoint is chosen on the MS val split.

    Args:
        data: The dataset folder.
        arch: Backbone name.
        out: The run folder to create.
        bands: MS bands to use, in order (default: the recipe's default teacher bands).
        trainer: Optimisation and execution settings.
        progress: Show a progress bar.

    Returns:
        The run folder.

    Raises:
        RunFolderError: If ``out`` already holds something.
        ManifestError: If ``data`` is not a dataset folder.
    """
    data, out = Path(data), Path(out)
    train = trainer or TrainerConfig()
    check_new_run(out)
    info = read_info(data)
    bands = tuple(bands) if bands else default_teacher_bands(info)
    config = TeacherRunConfig(arch=arch, bands=bands, dataset=dataset_ref(info), trainer=train)
    L.seed_everything(train.seed, workers=True, verbose=False)
    model = create_model(arch, in_chans=len(bands), num_classes=len(info.classes))
    module = ClassifierModule(
        model, multilabel=info.multilabel, lr=train.lr, weight_decay=train.weight_decay
    )
    return fit_run(config, module, data, "ms", bands, out, progress, {"teacher_run": None})


def distill(
    data: str | Path,
    teacher: str | Path,
    method: str,
    student_arch: str,
    out: str | Path,
    *,
    preset: str = "paper",
    overrides: Mapping[str, Any] | None = None,
    trainer: TrainerConfig | None = None,
    matcher: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Train an RGB student with a registered method and a frozen teacher run.

    Each RGB train image is paired with a random MS train chip of its class (seeded by the
    trainer seed), or, for methods that use one (SemBridge), with the choice of a trained
    matcher; methods may re-pair between epochs. The best checkpoint is chosen on the RGB val
    split.

    Args:
        data: The dataset folder (the one the teacher was trained on).
        teacher: The teacher run folder (its best checkpoint is used).
        method: Registered method name or ``"X+plugin"`` combination.
        student_arch: Student backbone name.
        out: The run folder to create.
        preset: ``"paper"`` or ``"original"``.
        overrides: Method settings to change (see :func:`msrgb_bench.baselines.create_method`).
        trainer: Optimisation and execution settings.
        matcher: A matcher run folder (``msrgb train-matcher``) for methods that pair with one.
        progress: Show a progress bar.

    Returns:
        The run folder.

    Raises:
        RunFolderError: If ``out`` exists, or the teacher or matcher run is unusable or was
            trained on another dataset.
        ValueError: If ``matcher`` is given to a method that does not use one.
    """
    data, out, teacher = Path(data), Path(out), Path(teacher)
    train = trainer or TrainerConfig()
    check_new_run(out)
    info = read_info(data)
    teacher_run = load_run(teacher, kind=TEACHER_KIND)
    if teacher_run.config["dataset"]["content_hash"] != info.content_hash:
        raise RunFolderError(
            teacher, f"was trained on another dataset than {data} (content hashes differ)"
        )
    L.seed_everything(train.seed, workers=True, verbose=False)
    teacher_model = teacher_run.build_model("best")
    student = create_model(
        student_arch, in_chans=len(info.rgb_bands), num_classes=len(info.classes)
    )
    distiller = create_method(method, student, teacher_model, preset=preset, overrides=overrides)
    extra: dict[str, Any] = {"teacher_run": str(teacher.resolve())}
    if matcher is not None:
        from msrgb_bench.baselines.sembridge.matcher_training import load_matcher

        matcher = Path(matcher)
        matcher_model, matcher_info = load_matcher(matcher)
        if matcher_info.content_hash != info.content_hash:
            raise RunFolderError(
                matcher, f"was trained on another dataset than {data} (content hashes differ)"
            )
        distiller.use_matcher(matcher_model, f"run {matcher_info.config_hash}")
        extra["matcher_run"] = str(matcher.resolve())
    elif distiller.needs_matcher:
        raise ValueError(
            f"method {method!r} pairs with a matcher: train one with `msrgb train-matcher` and "
            "pass it (--matcher RUN), or switch SSM off (--set ssm=false)"
        )
    teacher_bands = tuple(teacher_run.config["bands"])
    config = StudentRunConfig(
        arch=student_arch,
        rgb_bands=tuple(info.rgb_bands),
        teacher_arch=teacher_run.arch,
        teacher_bands=teacher_bands,
        teacher_config_hash=teacher_run.config_hash,
        method=method,
        preset=preset,
        method_config=distiller.resolved_config(),
        pairing=distiller.pairing_description(train.seed),
        dataset=dataset_ref(info),
        trainer=train,
    )
    module = DistillationModule(distiller, lr=train.lr, weight_decay=train.weight_decay)
    modality = "paired" if distiller.needs_teacher else "rgb"
    return fit_run(config, module, data, modality, teacher_bands, out, progress, extra)
