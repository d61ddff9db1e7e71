"""Write small dataset folders by hand in the contract layout (msrgb_bench/data/manifest.py)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from PIL import Image

from msrgb_bench.data.manifest import (
    DatasetInfo,
    content_hash,
    file_sha256,
    write_info,
    write_manifest,
)

CLASSES = ("Forest", "River", "SeaLake")
MS_BANDS = ("B02", "B03", "B04", "B08")
MS_SIZE = 8
RGB_SIZE = 6


@dataclass
class Chip:
    """One sample to write: its id, split, labels and pixels (C, H, W)."""

    sample_id: str
    modality: str
    split: str
    labels: list[int]
    pixels: np.ndarray
    label: int | None = None  # primary label; labels[0] by default, -1 for hidden
    raw: bytes | None = None  # file bytes to write verbatim (real sample files)


@dataclass
class Folder:
    """A written dataset folder and the chips it holds."""

    root: Path
    info: DatasetInfo
    chips: list[Chip] = field(default_factory=list)

    def chips_of(self, modality: str, split: str) -> list[Chip]:
        return sorted(
            (c for c in self.chips if c.modality == modality and c.split == split),
            key=lambda c: c.sample_id,
        )


def encode_tif(pixels: np.ndarray) -> bytes:
    """GeoTIFF bytes of a (C, H, W) array, with a UTM CRS as the builder keeps it."""
    count, height, width = pixels.shape
    with rasterio.MemoryFile() as mem:
        with mem.open(
            driver="GTiff",
            count=count,
            height=height,
            width=width,
            dtype=pixels.dtype,
            crs="EPSG:32632",
            transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5400000.0),
        ) as dst:
            dst.write(pixels)
        return bytes(mem.read())


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0))).save(buffer, format="PNG")
    return buffer.getvalue()


def train_norm(chips: list[Chip], modality: str) -> dict[str, list[float]]:
    """Per-band mean/std over the train chips, computed directly with numpy."""
    stack = np.stack([c.pixels for c in chips if c.modality == modality and c.split == "train"])
    values = stack.astype(np.float64).transpose(1, 0, 2, 3).reshape(stack.shape[1], -1)
    return {"mean": values.mean(axis=1).tolist(), "std": values.std(axis=1).tolist()}


def write_folder(
    root: Path,
    chips: list[Chip],
    *,
    classes: tuple[str, ...] = CLASSES,
    ms_bands: tuple[str, ...] = MS_BANDS,
    ms_size: int = MS_SIZE,
    rgb_size: int = RGB_SIZE,
    multilabel: bool = False,
    with_norm: bool = True,
) -> Folder:
    """Write ``chips`` into ``root`` in the contract layout, with manifest and dataset.json."""
    rows = []
    for chip in chips:
        name = classes[chip.labels[0]] if chip.labels else "hidden"
        suffix = "tif" if chip.modality == "ms" else "png"
        rel = f"{chip.modality}/{chip.split}/{name}/{chip.sample_id}.{suffix}"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if chip.raw is not None:
            data = chip.raw
        elif chip.modality == "ms":
            data = encode_tif(chip.pixels)
        else:
            data = encode_png(chip.pixels)
        path.write_bytes(data)
        label = chip.label if chip.label is not None else chip.labels[0]
        rows.append(
            {
                "sample_id": chip.sample_id,
                "modality": chip.modality,
                "split": chip.split,
                "label": label,
                "label_name": classes[label] if label >= 0 else "",
                "labels": list(chip.labels),
                "source": "handmade",
                "source_path": f"src/{chip.sample_id}",
                "path": rel,
                "sha256": file_sha256(path),
                "height": chip.pixels.shape[1],
                "width": chip.pixels.shape[2],
                "bands": chip.pixels.shape[0],
                "crs": "EPSG:32632" if chip.modality == "ms" else None,
                "lon": 9.0,
                "lat": 48.7,
                "region": "eu",
            }
        )
    manifest = pd.DataFrame(rows)
    write_manifest(manifest, root)
    norm = {m: train_norm(chips, m) for m in ("ms", "rgb")} if with_norm else {}
    info = DatasetInfo(
        recipe="handmade",
        version="0",
        classes=classes,
        ms_bands=ms_bands,
        rgb_bands=("R", "G", "B"),
        multilabel=multilabel,
        ms_size=ms_size,
        rgb_size=rgb_size,
        seed=0,
        tool_version="test",
        content_hash=content_hash(manifest),
        norm=norm,
    )
    write_info(info, root)
    return Folder(root=root, info=info, chips=chips)


def handmade_chips(seed: int = 0, multilabel: bool = False) -> list[Chip]:
    """3 classes; MS train 2/class, val 1/class, test 1/class; RGB train 3/class, val 1, test 1."""
    rng = np.random.default_rng(seed)
    chips: list[Chip] = []
    per_split = {"ms": {"train": 2, "val": 1, "test": 1}, "rgb": {"train": 3, "val": 1, "test": 1}}
    for modality, splits in per_split.items():
        for split, count in splits.items():
            for cls in range(len(CLASSES)):
                for k in range(count):
                    sid = f"{modality}-{split}-{CLASSES[cls].lower()}-{k}"
                    if modality == "ms":
                        pixels = rng.integers(0, 10000, (len(MS_BANDS), MS_SIZE, MS_SIZE))
                        pixels = pixels.astype(np.uint16)
                    else:
                        pixels = rng.integers(0, 256, (3, RGB_SIZE, RGB_SIZE)).astype(np.uint8)
                    labels = [cls]
                    if multilabel and modality == "ms" and k == 1:
                        labels = [cls, (cls + 1) % len(CLASSES)]
                    chips.append(Chip(sid, modality, split, labels, pixels))
    return chips


def hide_test_labels(chips: list[Chip]) -> list[Chip]:
    """The public copy's chips: test rows get label -1 and no labels."""
    return [replace(c, labels=[], label=-1) if c.split == "test" else c for c in chips]


EUROSAT_MS_BANDS = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)  # fmt: skip


REAL_CLASSES = ("Forest", "River", "SeaLake")


def real_eurosat_chips(sample: Path) -> list[Chip]:
    """Chips from the REAL EuroSAT sample: per class 4 MS tifs (2 train, 1 val, 1 test), kept
    byte for byte, and 5 RGB jpgs (3/1/1) re-encoded as PNG."""
    chips: list[Chip] = []
    splits = ["train", "train", "train", "val", "test"]
    for cls, name in enumerate(REAL_CLASSES):
        tifs = sorted((sample / "eurosat_ms" / name).glob("*.tif"))[:4]
        jpgs = sorted((sample / "eurosat_rgb" / name).glob("*.jpg"))[:5]
        for tif, split in zip(tifs, ["train", "train", "val", "test"], strict=True):
            with rasterio.open(tif) as src:
                pixels = src.read()
            raw = tif.read_bytes()  # the real GeoTIFF, CRS and all
            chips.append(Chip(f"eurosat-ms-{tif.stem}", "ms", split, [cls], pixels, raw=raw))
        for jpg, split in zip(jpgs, splits, strict=True):
            with Image.open(jpg) as img:
                pixels = np.asarray(img.convert("RGB")).transpose(2, 0, 1)
            chips.append(Chip(f"eurosat-rgb-{jpg.stem}", "rgb", split, [cls], pixels))
    return chips
