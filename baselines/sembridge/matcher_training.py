"""Training SemBridge's matcher (``msrgb train-matcher``) into a run folder, and loading it back.

The matcher (:class:`~msrgb_bench.baselines.sembridge.matcher.Matcher`) learns from MS chips
alone: every MS **train** chip gives a pair (the normalised MS chip for the MS tower, its
pseudo-RGB rendering for the RGB tower), and the soft-target CLIP loss aligns the two. The
validation loss on the MS **val** split picks the best checkpoint (the released code meant to keep
the lowest validation loss but, by a bug, saved only after epoch 1; its ReduceLROnPlateau
scheduler was never stepped, so there is no schedule here). Released settings: AdamW, lr 1e-3,
weight decay 1e-3, batch 64, 100 epochs, temperature 1, no augmentation.

The run folder is the engine's (:mod:`msrgb_bench.engine.runs`) with ``kind = "matcher"``: the
resolved config and its hash, ``run.json``, per-epoch ``train/loss`` and ``val/loss``, and the
``best`` (lowest ``val/loss``) and ``last`` checkpoints.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L  # noqa: N812  (Lightning's convention)
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from msrgb_bench.baselines.sembridge.matcher import (
    PROJ_DIM,
    Matcher,
    PseudoRGB,
    pseudo_rgb_bands,
    soft_clip_loss,
)
from msrgb_bench.data.datamodule import MSRGBDataModule, normalizer
from msrgb_bench.data.manifest import read_info
from msrgb_bench.engine.checkpoint import MODEL_PREFIX, load_checkpoint, load_into, strip_prefix
from msrgb_bench.engine.config import MATCHER_KIND, MatcherRunConfig, TrainerConfig
from msrgb_bench.engine.modules import TrainingModule
from msrgb_bench.engine.runs import CONFIG_NAME, check_new_run, checkpoint_path, load_run
from msrgb_bench.engine.train import dataset_ref, default_teacher_bands, fit_run
from msrgb_bench.errors import RunFolderError, UnknownNameError

MONITOR = "val/loss"
TEMPERATURE = 1.0


class MatcherBatch(nn.Module):
    """Turn a batch of raw MS chips (every stored band) into the matcher's two inputs.

    ``image`` becomes the chosen bands normalised with the MS train-split statistics (the MS
    tower's input); ``pseudo_rgb`` is added (:class:`PseudoRGB`, the RGB tower's input).

    Args:
        root: The dataset folder.
        bands: MS bands of the MS tower, in order (default: every stored band).
        channels: Pseudo-RGB channels, ``"rgb"`` or ``"first3"``.

    Raises:
        UnknownNameError: For a band the dataset does not have.
        ManifestError: If the dataset lacks a band pseudo-RGB needs.
    """

    def __init__(
        self, root: str | Path, bands: Sequence[str] | None = None, channels: str = "rgb"
    ) -> None:
        super().__init__()
        stored = read_info(root).ms_bands
        self.bands = tuple(bands) if bands is not None else stored
        for band in self.bands:
            if band not in stored:
                raise UnknownNameError("MS band", band, list(stored))
        self.indices = [stored.index(band) for band in self.bands]
        self.normalize = normalizer(root, "ms", self.bands)
        self.pseudo_rgb = PseudoRGB(root, stored, channels)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Return the batch with normalised ``image`` and ``pseudo_rgb``."""
        raw = batch["image"]
        out = dict(batch)
        out["image"] = self.normalize(raw[:, self.indices])
        out["pseudo_rgb"] = self.pseudo_rgb(raw)
        return out


class MatcherDataModule(MSRGBDataModule):
    """The MS data module of a dataset folder, yielding matcher batches (see :class:`MatcherBatch`).

    Train batches are the MS train split (shuffled), validation batches the MS val split. Every
    stored band is read, so pseudo-RGB can use bands the MS tower does not see. Called like
    :class:`~msrgb_bench.data.datamodule.MSRGBDataModule`.

    Args:
        root: The dataset folder.
        modality: Must be ``"ms"``.
        bands: MS bands of the MS tower (default: every stored band).
        batch_size: Batch size of every loader.
        num_workers: DataLoader workers.
        seed: Unused (kept for the common signature).
        augment: Must be ``False``: the matcher trains without augmentation.
        pseudo_rgb: Pseudo-RGB channels, ``"rgb"`` or ``"first3"``.
        **kwargs: Passed to :class:`~msrgb_bench.data.dataset.MSRGBDataset`.

    Raises:
        ValueError: For another modality or ``augment=True``.
    """

    def __init__(
        self,
        root: str | Path,
        modality: str = "ms",
        bands: Sequence[str] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        augment: bool = False,
        *,
        pseudo_rgb: str = "rgb",
        **kwargs: Any,
    ) -> None:
        if modality != "ms":
            raise ValueError(f"the matcher trains on MS chips, not {modality!r}")
        if augment:
            raise ValueError("the matcher trains without augmentation")
        super().__init__(
            root, "ms", None, batch_size, num_workers, seed, augment=False, **kwargs
        )  # fmt: skip
        self.tower_bands = tuple(bands) if bands is not None else None
        self.pseudo_rgb = pseudo_rgb
        self._inputs: MatcherBatch | None = None

    def setup(self, stage: str) -> None:
        """Create the datasets of ``stage``; every split's batches become matcher batches."""
        super().setup(stage)
        if self._inputs is None:
            self._inputs = MatcherBatch(self.root, self.tower_bands, self.pseudo_rgb)
        self.train_aug = self._inputs
        self.aug = self._inputs


class MatcherModule(TrainingModule):
    """Trains a :class:`Matcher` with the soft-target CLIP loss and AdamW.

    Logs ``train/loss`` and ``val/loss`` (the size-weighted mean of the batch losses over the
    val split, synchronised across DDP processes). Checkpoints hold the matcher under ``model.``.

    Args:
        matcher: The matcher.
        temperature: Loss temperature.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
    """

    def __init__(
        self, matcher: Matcher, *, temperature: float, lr: float, weight_decay: float
    ) -> None:
        super().__init__(lr, weight_decay)
        self.matcher = matcher
        self.temperature = temperature
        self.val_loss = MeanMetric()

    def trainable(self) -> list[nn.Parameter]:
        """Return the matcher's parameters except the frozen, unused classifier heads."""
        return [p for p in self.matcher.parameters() if p.requires_grad]

    def predictor(self) -> nn.Module:
        """Return the matcher."""
        return self.matcher

    def batch_norm_forward(self, batch: dict[str, Any]) -> None:
        """Run both towers on a batch, to gather BatchNorm statistics (PreciseBN)."""
        self.matcher(batch["image"], batch["pseudo_rgb"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW without a schedule (the released code's scheduler is never stepped)."""
        return torch.optim.AdamW(self.trainable(), lr=self.lr, weight_decay=self.weight_decay)

    def _loss(self, batch: dict[str, Any]) -> Tensor:
        ms, rgb = self.matcher(batch["image"], batch["pseudo_rgb"])
        return soft_clip_loss(ms, rgb, self.temperature)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Return the loss of a batch."""
        loss = self._loss(batch)
        self._log_train("loss", loss, len(batch["image"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Accumulate the validation loss."""
        self.val_loss.update(self._loss(batch), weight=len(batch["image"]))
        self.log(MONITOR, self.val_loss, on_step=False, on_epoch=True)


def train_matcher(
    data: str | Path,
    out: str | Path,
    *,
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    seed: int = 42,
    arch: str = "resnet34",
    pseudo_rgb: str = "rgb",
    bands: Sequence[str] | None = None,
    accelerator: str = "auto",
    devices: str = "auto",
    strategy: str = "auto",
    precision: str = "32-true",
    num_workers: int = 0,
    train_batches: int | None = None,
    precise_bn_batches: int = 0,
    progress: bool = True,
) -> Path:
    """Train SemBridge's matcher on the MS train split of a dataset folder.

    Args:
        data: The dataset folder.
        out: The run folder to create.
        epochs: Epochs.
        batch_size: Global batch size (split evenly over DDP processes).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        seed: Seed of weights and data order.
        arch: Backbone of both towers.
        pseudo_rgb: ``"rgb"`` (B04, B03, B02) or ``"first3"`` (the released code's first three
            stored bands).
        bands: MS bands of the MS tower (default: the recipe's default teacher bands).
        accelerator: Lightning accelerator.
        devices: Lightning devices (``auto``, a count or ids ``0,1``).
        strategy: Lightning strategy.
        precision: Lightning precision.
        num_workers: DataLoader workers per device.
        train_batches: At most this many batches per epoch (``None``: all).
        precise_bn_batches: Recompute BatchNorm statistics over this many training batches
            before each validation (0: off); see :class:`~msrgb_bench.engine.config.TrainerConfig`.
        progress: Show a progress bar.

    Returns:
        The run folder.

    Raises:
        RunFolderError: If ``out`` already holds something.
        ManifestError: If ``data`` is not a dataset folder or lacks a pseudo-RGB band.
        UnknownNameError: For an unknown band or architecture.
        ValueError: For a bad setting.
    """
    data, out = Path(data), Path(out)
    check_new_run(out)
    info = read_info(data)
    bands = tuple(bands) if bands else default_teacher_bands(info)
    for band in bands:
        if band not in info.ms_bands:
            raise UnknownNameError("MS band", band, list(info.ms_bands))
    train = TrainerConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
        augment=False, num_workers=num_workers, accelerator=accelerator, devices=devices,
        strategy=strategy, precision=precision, train_batches=train_batches,
        precise_bn_batches=precise_bn_batches,
    )  # fmt: skip
    config = MatcherRunConfig(
        arch=arch,
        bands=bands,
        pseudo_rgb=pseudo_rgb,
        pseudo_rgb_bands=pseudo_rgb_bands(info, data, pseudo_rgb),
        proj_dim=PROJ_DIM,
        temperature=TEMPERATURE,
        dataset=dataset_ref(info),
        trainer=train,
    )
    L.seed_everything(seed, workers=True, verbose=False)
    matcher = Matcher(len(bands), arch, PROJ_DIM, ms_bands=bands)
    module = MatcherModule(matcher, temperature=TEMPERATURE, lr=lr, weight_decay=weight_decay)
    frozen = sum(p.numel() for p in matcher.parameters() if not p.requires_grad)
    # The unused classifier heads are frozen parts of the matcher, not extra modules.
    extra = {"extra_param_count": 0, "frozen_param_count": frozen}
    return fit_run(
        config, module, data, "ms", bands, out, progress, extra,
        datamodule_cls=functools.partial(MatcherDataModule, pseudo_rgb=pseudo_rgb),
        monitor=MONITOR, mode="min",
    )  # fmt: skip


@dataclass(frozen=True)
class MatcherInfo:
    """What a matcher run says about the matcher it holds.

    Attributes:
        path: The run folder.
        arch: Backbone of both towers.
        bands: MS bands of the MS tower, in input order.
        pseudo_rgb: ``"rgb"`` or ``"first3"``.
        pseudo_rgb_bands: The MS bands rendered as red, green and blue.
        proj_dim: Width of the projected embeddings.
        temperature: Loss temperature.
        content_hash: Content hash of the dataset it was trained on.
        config_hash: The run's config hash.
        checkpoint: Which checkpoint was loaded (``best`` or ``last``).
        epoch: The epoch (0-based) the checkpoint was taken after.
        val_loss: The validation loss of that epoch.
    """

    path: Path
    arch: str
    bands: tuple[str, ...]
    pseudo_rgb: str
    pseudo_rgb_bands: tuple[str, ...]
    proj_dim: int
    temperature: float
    content_hash: str
    config_hash: str
    checkpoint: str
    epoch: int
    val_loss: float


def load_matcher(run: str | Path, which: str = "best") -> tuple[Matcher, MatcherInfo]:
    """Rebuild the matcher of a finished matcher run folder, in eval mode on the CPU.

    Args:
        run: The run folder (``msrgb train-matcher --out``).
        which: ``"best"`` (lowest validation loss) or ``"last"``.

    Returns:
        ``(matcher, info)``.

    Raises:
        RunFolderError: If the folder is not a finished run (e.g. a ``.NAME.partial`` staging
            folder), is another kind of run, was edited, or its checkpoint does not fit.
    """
    path = Path(run)
    loaded = load_run(path, kind=MATCHER_KIND)
    ckpt = checkpoint_path(path, which)
    tensors, metadata = load_checkpoint(ckpt)
    if metadata.get("config_hash") != loaded.config_hash:
        raise RunFolderError(ckpt, "belongs to another run (config hash differs)")
    config = loaded.config
    try:
        bands = tuple(str(b) for b in config["bands"])
        info = MatcherInfo(
            path=path,
            arch=str(config["arch"]),
            bands=bands,
            pseudo_rgb=str(config["pseudo_rgb"]),
            pseudo_rgb_bands=tuple(str(b) for b in config["pseudo_rgb_bands"]),
            proj_dim=int(config["proj_dim"]),
            temperature=float(config["temperature"]),
            content_hash=str(config["dataset"]["content_hash"]),
            config_hash=loaded.config_hash,
            checkpoint=which,
            epoch=int(metadata["epoch"]),
            val_loss=float(metadata[MONITOR]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(path / CONFIG_NAME, f"malformed matcher run ({exc!r})") from exc
    matcher = Matcher(len(bands), info.arch, info.proj_dim, ms_bands=bands)
    load_into(matcher, strip_prefix(tensors, MODEL_PREFIX), ckpt)
    return matcher.eval(), info
