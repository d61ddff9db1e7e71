"""The one place a ``lightning.Trainer`` is configured."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L  # noqa: N812  (Lightning's convention)
from lightning.pytorch.callbacks import Callback

from msrgb_bench.engine.callbacks import PreciseBatchNorm
from msrgb_bench.engine.config import TrainerConfig


def parse_devices(devices: str | int) -> str | int | list[int]:
    """Turn the ``--devices`` text into what Lightning takes: ``auto``, a count or a list of ids."""
    text = str(devices).strip()
    if text == "auto":
        return text
    if "," in text:
        return [int(part) for part in text.split(",") if part.strip()]
    return int(text)


def build_trainer(
    config: TrainerConfig,
    root: Path,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> L.Trainer:
    """Return a Trainer for ``config``.

    It has no logger and writes no Lightning checkpoints (the run folder and
    :class:`~msrgb_bench.engine.callbacks.RunRecorder` replace them), and skips the sanity
    validation.

    Args:
        config: Epochs and the accelerator, devices, strategy and precision to run on.
        root: Lightning's ``default_root_dir`` (the run's staging folder).
        callbacks: Extra callbacks (:class:`PreciseBatchNorm` is added when the config asks).
        progress: Show Lightning's progress bar.
    """
    extra = [PreciseBatchNorm(config.precise_bn_batches)] if config.precise_bn_batches else []
    return L.Trainer(
        accelerator=config.accelerator,
        devices=parse_devices(config.devices),
        strategy=config.strategy,
        precision=config.precision,  # type: ignore[arg-type]
        max_epochs=config.epochs,
        limit_train_batches=config.train_batches,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        num_sanity_val_steps=0,
        default_root_dir=root,
        callbacks=[*callbacks, *extra],
    )


def per_device_batch_size(batch_size: int, world_size: int) -> int:
    """Split a global batch size over ``world_size`` processes.

    Raises:
        ValueError: If it does not divide evenly.
    """
    if batch_size % world_size:
        raise ValueError(
            f"batch size {batch_size} does not split evenly over {world_size} processes"
        )
    return batch_size // world_size
