"""``MSRGBDataModule``: the Lightning data module of an msrgb dataset folder (torchgeo style).

Three modes:

* ``"ms"``: teacher training on MS chips (train / val / test / predict splits of ``ms``).
* ``"rgb"``: student training without a teacher, evaluation and prediction on RGB images.
* ``"paired"``: distillation. The train loader yields :class:`PairedMSRGBDataset` samples;
  val / test / predict are the RGB student splits.

Normalisation uses the per-band mean/std of the train split stored in ``dataset.json``
(``info.norm``), through :func:`normalizer`, which ``msrgb predict`` reuses so that training and
prediction normalise identically. Batch augmentation runs after transfer to the device, as in
torchgeo: kornia flips and 90-degree rotations on train batches only.

Loaders fetch whole batches (``__getitems__``) and collate them without a second copy
(:func:`~msrgb_bench.data.dataset.collate_samples`). On a packed folder reading is a memory copy,
so ``num_workers=0`` is usually fastest: workers must ship every batch through shared memory
(see ``benchmarks/bench_loader.py``). Workers help only where decoding files dominates and
cores are free.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kornia.augmentation as K  # noqa: N812  (kornia's and torchgeo's convention)
import numpy as np
import torch
from torch import Tensor, nn
from torchgeo.datamodules import NonGeoDataModule

from msrgb_bench.data.dataset import MSRGBDataset, collate_samples
from msrgb_bench.data.manifest import DatasetInfo, read_info
from msrgb_bench.data.packed import bands_of
from msrgb_bench.data.paired import PairedMSRGBDataset

log = logging.getLogger(__name__)

MODES = ("ms", "rgb", "paired")


def compute_norm(root: str | Path, modality: str) -> dict[str, list[float]]:
    """Compute the per-band mean and (population) std of ``modality`` over the train split.

    Args:
        root: The dataset folder.
        modality: ``"ms"`` or ``"rgb"``.

    Returns:
        ``{"mean": [...], "std": [...]}`` over every band of the modality, in file units.
    """
    dataset = MSRGBDataset(root, "train", modality)
    total = np.zeros(len(dataset.bands), dtype=np.float64)
    total_sq = np.zeros_like(total)
    count = 0
    for i in range(len(dataset)):
        array = dataset.read_array(i).astype(np.float64)
        total += array.sum(axis=(1, 2))
        total_sq += np.square(array).sum(axis=(1, 2))
        count += array.shape[1] * array.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return {"mean": mean.tolist(), "std": std.tolist()}


def norm_stats(
    root: str | Path, modality: str, bands: Sequence[str] | None = None
) -> tuple[list[float], list[float]]:
    """Return the train-split mean and std of the chosen bands of ``modality``.

    They are read from ``dataset.json``; a folder without them (built by an older version) gets
    them computed on its train split, with a log line, and ``dataset.json`` is left untouched.

    Args:
        root: The dataset folder.
        modality: ``"ms"`` or ``"rgb"``.
        bands: Band names in the order the model sees them; all bands when ``None``.

    Returns:
        ``(mean, std)`` lists, one value per band.
    """
    info = read_info(root)
    all_bands = bands_of(info, modality)
    stats = info.norm.get(modality)
    if not stats:
        log.warning(
            "%s has no norm stats for %s; computing them on the train split (not saved)",
            Path(root) / "dataset.json",
            modality,
        )
        stats = compute_norm(root, modality)
    picked = [all_bands.index(b) for b in (bands or all_bands)]
    return [float(stats["mean"][i]) for i in picked], [float(stats["std"][i]) for i in picked]


def normalizer(root: str | Path, modality: str, bands: Sequence[str] | None = None) -> K.Normalize:
    """Return the kornia ``Normalize`` of ``modality`` (train-split stats, see :func:`norm_stats`).

    Works on ``(B, C, H, W)`` batches of raw values, as the datasets yield them.
    """
    mean, std = norm_stats(root, modality, bands)
    return K.Normalize(mean=torch.tensor(mean), std=torch.tensor(std))


def batch_augmentation(normalize: K.Normalize, train: bool) -> K.AugmentationSequential:
    """Return torchgeo-style batch augmentation: normalise, plus flips and rot90 for training."""
    steps: list[Any] = [normalize]
    if train:
        steps += [
            K.RandomHorizontalFlip(),
            K.RandomVerticalFlip(),
            K.RandomRotation90(times=(0, 3), resample="nearest"),
        ]
    return K.AugmentationSequential(*steps, data_keys=None, keepdim=True)


class PairedAugmentation(nn.Module):
    """Augment a paired batch: ``image`` as a student, ``teacher_image`` as a teacher batch.

    Args:
        student: Augmentation of the RGB ``image`` (the other keys pass through it).
        teacher: Augmentation of the MS ``teacher_image``.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Return the augmented batch."""
        out = dict(self.student(batch))
        out["teacher_image"] = self.teacher({"image": batch["teacher_image"]})["image"]
        return out


class MSRGBDataModule(NonGeoDataModule):
    """Lightning data module of an msrgb dataset folder.

    Args:
        root: The dataset folder.
        modality: ``"ms"``, ``"rgb"`` or ``"paired"`` (see the module docstring).
        bands: MS bands to load (the teacher's in paired mode); all bands when ``None``.
        batch_size: Batch size of every loader.
        num_workers: DataLoader workers.
        seed: Seed of the default pairing (paired mode).
        predict_split: Split served by ``predict_dataloader``.
        augment: Apply flips and rot90 to train batches.
        **kwargs: Passed to :class:`MSRGBDataset` (``download``, ``checksum``, ``packed``,
            ``repo_id``, ``revision``).
    """

    def __init__(
        self,
        root: str | Path,
        modality: str = "ms",
        bands: Sequence[str] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        predict_split: str = "test",
        augment: bool = True,
        **kwargs: Any,
    ) -> None:
        if modality not in MODES:
            raise ValueError(f"unknown mode {modality!r}; expected one of {', '.join(MODES)}")
        self.mode = modality
        self.ms_bands = tuple(bands) if bands is not None else None
        eval_modality = "rgb" if modality == "paired" else modality
        eval_bands = None if eval_modality == "rgb" else self.ms_bands
        super().__init__(
            MSRGBDataset,
            batch_size,
            num_workers,
            root=root,
            modality=eval_modality,
            bands=eval_bands,
            **kwargs,
        )
        self.collate_fn = collate_samples
        self.root = Path(root)
        self.seed = seed
        self.predict_split = predict_split
        self.augment = augment
        self._info: DatasetInfo | None = None
        self._paired: PairedMSRGBDataset | None = None
        self._augs_ready = False

    # -- facts for the engine -------------------------------------------------------------------

    @property
    def info(self) -> DatasetInfo:
        """The folder's ``dataset.json`` (read on first use, after any download)."""
        if self._info is None:
            self._info = read_info(self.root)
        return self._info

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.info.classes)

    @property
    def in_channels(self) -> int:
        """Input channels of the model this module trains (the student's in paired mode)."""
        if self.mode == "ms":
            return len(self.ms_bands or self.info.ms_bands)
        return len(self.info.rgb_bands)

    @property
    def teacher_bands(self) -> tuple[str, ...]:
        """MS bands the teacher sees."""
        return self.ms_bands or self.info.ms_bands

    @property
    def paired_dataset(self) -> PairedMSRGBDataset:
        """The paired train dataset (paired mode), so the engine can call ``set_pairs``."""
        if self.mode != "paired":
            raise ValueError(f"paired_dataset needs mode 'paired', this module is {self.mode!r}")
        if self._paired is None:
            self._paired = PairedMSRGBDataset(
                self.root, "train", ms_bands=self.ms_bands, seed=self.seed
            )
        return self._paired

    # -- setup ----------------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        """Create the datasets of ``stage`` and the batch augmentations."""
        if stage == "fit" and self.mode == "paired":
            self.train_dataset = self.paired_dataset
            self.val_dataset = MSRGBDataset(split="val", **self.kwargs)
        elif stage == "predict":
            self.predict_dataset = MSRGBDataset(split=self.predict_split, **self.kwargs)
        else:
            super().setup(stage)
        self._build_augs()

    def _build_augs(self) -> None:
        if self._augs_ready:
            return
        if self.mode == "paired":
            rgb = normalizer(self.root, "rgb")
            ms = normalizer(self.root, "ms", self.ms_bands)
            self.train_aug = PairedAugmentation(
                batch_augmentation(rgb, self.augment), batch_augmentation(ms, self.augment)
            )
            self.aug = batch_augmentation(rgb, train=False)
        else:
            bands = self.ms_bands if self.mode == "ms" else None
            norm = normalizer(self.root, self.mode, bands)
            self.train_aug = batch_augmentation(norm, self.augment)
            self.aug = batch_augmentation(norm, train=False)
        self._augs_ready = True

    def normalize_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Apply the evaluation transform (normalisation only) to a batch outside a trainer."""
        self._build_augs()
        return self.aug(batch)
