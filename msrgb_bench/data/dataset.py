"""``MSRGBDataset``: one modality and split of a built msrgb dataset folder, as a torchgeo dataset.

The folder contract is :mod:`msrgb_bench.data.manifest`. Samples are read from the packed arrays
(:mod:`msrgb_bench.data.packed`) when the folder has them, and from the GeoTIFF / PNG files
otherwise; both paths give the same values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor
from torch.utils.data import default_collate, get_worker_info
from torchgeo.datasets import DatasetNotFoundError, NonGeoDataset, RGBBandsMissingError

from msrgb_bench.data.manifest import (
    INFO_NAME,
    MANIFEST_NAME,
    MODALITIES,
    SPLITS,
    DatasetInfo,
    read_info,
    read_manifest,
    verify_files,
)
from msrgb_bench.data.packed import (
    bands_of,
    check_content_hash,
    check_packed,
    open_packed,
    read_packed_index,
    size_of,
    subset,
)
from msrgb_bench.data.readers import check_array, read_sample
from msrgb_bench.errors import ManifestError, UnknownNameError

log = logging.getLogger(__name__)

#: The Sentinel-2 bands shown as red, green and blue (and used for pseudo-RGB).
MS_RGB_BANDS = ("B04", "B03", "B02")

Sample = dict[str, Any]


class MSRGBDataset(NonGeoDataset):
    """One modality (``ms`` teacher or ``rgb`` student) and split of an msrgb dataset folder.

    Each sample is a dict:

    * ``image``: float32 tensor ``(C, H, W)`` in the file's units (MS reflectance x 10000,
      RGB 0..255); normalisation is the data module's job.
    * ``label``: long scalar, the class index (the primary class of a multi-label sample;
      -1 where the labels are hidden).
    * ``labels``: float32 multi-hot ``(num_classes,)``, only for multi-label teacher samples.
    * ``sample_id``: the manifest's id.

    Args:
        root: The dataset folder (holds ``manifest.parquet`` and ``dataset.json``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        modality: ``"ms"`` or ``"rgb"``.
        bands: Band names to load, in this order; all bands of the modality when ``None``.
        transforms: A function applied to each sample dict.
        download: Fetch the dataset from the Hugging Face Hub when ``root`` does not hold it.
        checksum: Verify each file (or packed array) of this split against its sha256.
        repo_id: Hub dataset repository for ``download`` (default
            :data:`msrgb_bench.hub.DEFAULT_REPO_ID`).
        revision: Hub revision for ``download`` (default :data:`msrgb_bench.hub.DEFAULT_REVISION`).
        endpoint: Hub URL for ``download``, e.g. a mirror (default: huggingface_hub's, which
            honours ``HF_ENDPOINT``).
        packed: Use the packed arrays: ``None`` when present, ``True`` always (error without
            them), ``False`` never.

    Raises:
        DatasetNotFoundError: If ``root`` holds no dataset and ``download`` is False.
        ManifestError: If the folder breaks its contract (the message names the file).
        UnknownNameError: For an unknown band name.
        ValueError: For an unknown split or modality.
    """

    splits = SPLITS
    modalities = MODALITIES
    rgb_bands = MS_RGB_BANDS

    def __init__(
        self,
        root: str | Path = "data",
        split: str = "train",
        modality: str = "ms",
        bands: Sequence[str] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        download: bool = False,
        checksum: bool = False,
        *,
        repo_id: str | None = None,
        revision: str | None = None,
        endpoint: str | None = None,
        packed: bool | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if modality not in MODALITIES:
            raise ValueError(
                f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}"
            )
        self.root = Path(root)
        self.split = split
        self.modality = modality
        self.transforms = transforms
        self.download = download
        self.checksum = checksum
        self.repo_id = repo_id
        self.revision = revision
        self.endpoint = endpoint

        self._verify()
        self.info: DatasetInfo = read_info(self.root)
        manifest = read_manifest(self.root)
        check_content_hash(self.root, self.info, manifest)

        self.all_bands: tuple[str, ...] = bands_of(self.info, modality)
        self.bands: tuple[str, ...] = tuple(bands) if bands is not None else self.all_bands
        for band in self.bands:
            if band not in self.all_bands:
                raise UnknownNameError(f"{modality} band", band, list(self.all_bands))
        if not self.bands:
            raise ValueError("bands must name at least one band")
        self.band_indexes = [self.all_bands.index(b) for b in self.bands]
        self._all_band_order = self.band_indexes == list(range(len(self.all_bands)))
        size = size_of(self.info, modality)
        self.file_shape = (len(self.all_bands), size, size)

        self.rows = subset(manifest, modality, split)
        self._check_rows(manifest)
        self.classes: tuple[str, ...] = self.info.classes
        self.multilabel = bool(self.info.multilabel and modality == "ms")
        self.sample_ids: list[str] = list(self.rows["sample_id"])
        self.labels = self.rows["label"].to_numpy(dtype=np.int64)
        self.multi_hot = multi_hot(self.rows["labels"], len(self.classes))
        self.paths = [self.root / rel for rel in self.rows["path"]]

        self._packed_path = self._find_packed(packed)
        self._packed: np.ndarray | None = None
        if self._packed_path is None:
            self._check_files_exist()
            if checksum:
                verify_files(self.root, self.rows)

    # -- checks ---------------------------------------------------------------------------------

    def _verify(self) -> None:
        """Make sure the dataset is in ``root``, downloading it if asked (torchgeo's convention)."""
        if (self.root / MANIFEST_NAME).is_file() or (self.root / INFO_NAME).is_file():
            return
        parent = self.root.parent
        if (parent / MANIFEST_NAME).is_file():
            raise ManifestError(
                self.root,
                f"is a folder inside a dataset; pass the dataset folder itself ({parent})",
            )
        if self.download:
            from msrgb_bench import hub

            hub.download(
                self.repo_id or hub.DEFAULT_REPO_ID,
                self.revision or hub.DEFAULT_REVISION,
                self.root,
                endpoint=self.endpoint,
            )
            return
        raise DatasetNotFoundError(self)

    def _check_rows(self, manifest: pd.DataFrame) -> None:
        where = self.root / MANIFEST_NAME
        if not len(self.rows):
            present = sorted(set(manifest.loc[manifest["modality"] == self.modality, "split"]))
            raise ManifestError(
                where,
                f"has no {self.modality} samples in split {self.split!r} "
                f"(splits with {self.modality} samples: {', '.join(present) or 'none'})",
            )
        n_classes = len(self.info.classes)
        labels = self.rows["label"]
        bad = self.rows[(labels < -1) | (labels >= n_classes)]
        if len(bad):
            row = bad.iloc[0]
            raise ManifestError(
                where,
                f"sample {row.sample_id!r} has label {row.label}, outside 0..{n_classes - 1}",
            )
        for sample_id, sample_labels in zip(
            self.rows["sample_id"], self.rows["labels"], strict=True
        ):
            if any(not 0 <= int(v) < n_classes for v in sample_labels):
                raise ManifestError(where, f"sample {sample_id!r} has labels {list(sample_labels)}")
        channels, height, width = self.file_shape
        shape_bad = self.rows[
            (self.rows["bands"] != channels)
            | (self.rows["height"] != height)
            | (self.rows["width"] != width)
        ]
        if len(shape_bad):
            row = shape_bad.iloc[0]
            raise ManifestError(
                where,
                f"sample {row.sample_id!r} is listed as {row.bands}x{row.height}x{row.width}, "
                f"dataset.json promises {channels}x{height}x{width}",
            )

    def _check_files_exist(self) -> None:
        for path in self.paths:
            if not path.is_file():
                raise ManifestError(path, "listed in manifest.parquet but missing")

    def _find_packed(self, packed: bool | None) -> Path | None:
        if packed is False:
            return None
        index = read_packed_index(self.root, self.modality, self.split)
        if index is None:
            if packed:
                raise ManifestError(
                    self.root, f"has no packed {self.modality}/{self.split} array; run msrgb pack"
                )
            return None
        return check_packed(self.root, index, self.info, self.rows, checksum=self.checksum)

    # -- reading --------------------------------------------------------------------------------

    @property
    def is_packed(self) -> bool:
        """Whether samples are read from a packed array."""
        return self._packed_path is not None

    def read_array(self, index: int) -> np.ndarray:
        """Return sample ``index`` as a ``(C, H, W)`` array of the selected bands, file dtype."""
        if self._packed_path is not None:
            if self._packed is None:
                # Opened lazily, so each DataLoader worker maps the file itself; a plain ndarray
                # view of the map indexes faster than np.memmap.
                self._packed = open_packed(self._packed_path).view(np.ndarray)
            row = self._packed[index]
            return np.asarray(row if self._all_band_order else row[self.band_indexes])
        path = self.paths[index]
        array = read_sample(path, self.modality)
        check_array(array, self.file_shape, path)
        return array if self._all_band_order else array[self.band_indexes]

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.sample_ids)

    def __getitem__(self, index: int) -> Sample:
        """Return sample ``index`` (see the class docstring for its keys)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image = torch.from_numpy(self.read_array(index).astype(np.float32))
        sample: Sample = {
            "image": image,
            "label": torch.tensor(self.labels[index]),
            "sample_id": self.sample_ids[index],
        }
        if self.multilabel:
            sample["labels"] = torch.from_numpy(self.multi_hot[index])
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def read_images(self, indices: Sequence[int]) -> Tensor:
        """Read several samples into one float32 ``(B, C, H, W)`` tensor.

        Each sample is converted straight from the memory map (or file) into its row: one copy
        per sample, as in a bare read. In a DataLoader worker the tensor is in shared memory, so
        sending it to the main process copies nothing more.
        """
        shape = (len(indices), len(self.bands), *self.file_shape[1:])
        if get_worker_info() is None:
            batch = torch.empty(shape)
        else:
            # Allocated in shared memory as default_collate does in workers, so the batch goes
            # to the main process without another copy.
            storage = torch.UntypedStorage._new_shared(int(np.prod(shape)) * 4)
            batch = torch.empty(0).set_(storage).view(shape)
        out = batch.numpy()
        for row, index in enumerate(indices):
            out[row] = self.read_array(int(index))
        return batch

    def __getitems__(self, indices: Sequence[int]) -> list[Sample]:
        """Return the samples of a batch, read at once (the DataLoader's batched fetch).

        The images (and labels) are rows of one tensor, which :func:`collate_samples` passes on
        without stacking them again. With ``transforms`` each sample is read on its own.
        """
        if self.transforms is not None:
            return [self[int(i)] for i in indices]
        positions = np.asarray(indices, dtype=np.int64)
        images = self.read_images(indices).unbind(0)
        labels = torch.from_numpy(self.labels[positions]).unbind(0)
        ids = [self.sample_ids[i] for i in positions]
        if not self.multilabel:
            return [
                {"image": image, "label": label, "sample_id": sample_id}
                for image, label, sample_id in zip(images, labels, ids, strict=True)
            ]
        multi = torch.from_numpy(self.multi_hot[positions]).unbind(0)
        return [
            {"image": image, "label": label, "sample_id": sample_id, "labels": labels_row}
            for image, label, sample_id, labels_row in zip(images, labels, ids, multi, strict=True)
        ]

    def __getstate__(self) -> dict[str, Any]:
        """Drop the memory map when pickled (to a worker), so it is not copied."""
        state = self.__dict__.copy()
        state["_packed"] = None
        return state

    # -- plotting -------------------------------------------------------------------------------

    def plot(self, sample: Sample, show_titles: bool = True, suptitle: str | None = None) -> Figure:
        """Plot a sample (MS as RGB from B04/B03/B02 with a 2-98 percentile stretch).

        Args:
            sample: A sample as returned by ``__getitem__``, optionally with ``prediction``.
            show_titles: Show the label (and prediction) above the image.
            suptitle: Figure title.

        Returns:
            The figure.

        Raises:
            RGBBandsMissingError: If an MS sample lacks one of B04, B03, B02.
        """
        image = np.asarray(_numpy(sample["image"]), dtype=np.float64)
        if self.modality == "ms":
            if not all(b in self.bands for b in MS_RGB_BANDS):
                raise RGBBandsMissingError()
            rgb = percentile_stretch(image[[self.bands.index(b) for b in MS_RGB_BANDS]])
        else:
            rgb = np.clip(image / 255.0, 0.0, 1.0)
        figure = Figure(figsize=(4, 4))
        axis = figure.add_subplot()
        axis.imshow(rgb.transpose(1, 2, 0))
        axis.axis("off")
        if show_titles:
            title = f"Label: {self._names(sample.get('labels'), sample['label'])}"
            if "prediction" in sample:
                title += f"\nPrediction: {self._names(None, sample['prediction'])}"
            axis.set_title(title)
        if suptitle is not None:
            figure.suptitle(suptitle)
        return figure

    def _names(self, multi: Any, label: Any) -> str:
        if multi is not None:
            picked = np.flatnonzero(_numpy(multi) > 0.5)
            return ", ".join(self.classes[i] for i in picked) or "(none)"
        index = int(_numpy(label))
        return self.classes[index] if 0 <= index < len(self.classes) else "(hidden)"


def collate_samples(samples: Sequence[Sample]) -> Sample:
    """Collate sample dicts like ``default_collate``, without re-copying pre-batched tensors.

    Where the values of a key are consecutive rows of one tensor (as
    :meth:`MSRGBDataset.__getitems__` returns them), that tensor is the batch; everything else
    goes through ``default_collate``.
    """
    batch: Sample = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        rows = _rows_of_one_tensor(values)
        batch[key] = rows if rows is not None else default_collate(values)
    return batch


def _rows_of_one_tensor(values: Sequence[Any]) -> Tensor | None:
    first = values[0]
    if not all(isinstance(value, Tensor) for value in values):
        return None
    if any(
        value.dtype != first.dtype or value.shape != first.shape or not value.is_contiguous()
        for value in values
    ):
        return None
    step = first.numel()
    stride = step * first.element_size()
    start = first.data_ptr()
    if not stride or [v.data_ptr() for v in values] != list(
        range(start, start + len(values) * stride, stride)
    ):
        return None
    # Consecutive addresses inside the first value's storage: rows of that storage.
    if (first.storage_offset() + len(values) * step) * first.element_size() > (
        first.untyped_storage().nbytes()
    ):
        return None
    return first.as_strided(
        (len(values), *first.shape), (step, *first.stride()), first.storage_offset()
    )


def multi_hot(labels: Sequence[Sequence[int]] | pd.Series, num_classes: int) -> np.ndarray:
    """Turn lists of class indices into a float32 ``(N, num_classes)`` multi-hot matrix."""
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    for i, row in enumerate(labels):
        out[i, np.asarray(row, dtype=np.int64)] = 1.0
    return out


def percentile_stretch(image: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Stretch each channel of a ``(C, H, W)`` image from its percentiles to 0..1."""
    lo = np.percentile(image, low, axis=(1, 2), keepdims=True)
    hi = np.percentile(image, high, axis=(1, 2), keepdims=True)
    return np.clip((image - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)
