"""Per-chip work of a build: write the output file, its preview hash and band statistics.

This runs in worker processes (or Dask workers), one call per sample, and returns a small record;
images never accumulate in memory.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import rasterio
from affine import Affine
from PIL import Image

from msrgb_bench.atomic import atomic_path
from msrgb_bench.errors import CorruptRasterError
from msrgb_bench.pipelines.sources.base import Chip, Source, SourceItem

# EuroSAT's own RGB recipe: bands 4, 3, 2 scaled linearly from 0..2750 to 0..255 and clipped.
MS_PREVIEW_BANDS = ("B04", "B03", "B02")
MS_PREVIEW_SCALE = 2750.0
THUMB = 8


@dataclass(frozen=True)
class ChipRecord:
    """What the build keeps of one written sample.

    Attributes:
        index: Position of the item in the build's item list.
        staged: File name inside the staging folder.
        sha256: sha256 of the written file.
        height: Rows.
        width: Columns.
        bands: Channels.
        crs: CRS string or ``None``.
        lon: Footprint centroid longitude (WGS84) or NaN.
        lat: Footprint centroid latitude (WGS84) or NaN.
        bounds: WGS84 footprint (west, south, east, north) or ``None``.
        phash: 64-bit perceptual hash of the preview.
        thumb: 8x8 grayscale thumbnail of the preview (for confirming near-duplicates).
        band_sum: Per-band sum of pixel values.
        band_sumsq: Per-band sum of squared pixel values.
        pixels: Pixels per band.
    """

    index: int
    staged: str
    sha256: str
    height: int
    width: int
    bands: int
    crs: str | None
    lon: float
    lat: float
    bounds: tuple[float, float, float, float] | None
    phash: int
    thumb: bytes
    band_sum: tuple[float, ...]
    band_sumsq: tuple[float, ...]
    pixels: int


def preview(chip: Chip) -> Image.Image:
    """Return an 8-bit RGB rendering of a chip (EuroSAT's recipe for MS, as-is for RGB)."""
    if chip.array.dtype == np.uint8 and chip.array.shape[0] == 3:
        return Image.fromarray(np.ascontiguousarray(chip.array.transpose(1, 2, 0)), "RGB")
    try:
        idx = [chip.band_names.index(b) for b in MS_PREVIEW_BANDS]
    except ValueError:
        idx = [0, 0, 0]
    rgb = chip.array[idx].astype(np.float64) / MS_PREVIEW_SCALE * 255.0
    rgb8 = np.clip(rgb, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(rgb8), "RGB")


def resize_rgb(array: np.ndarray, size: int) -> np.ndarray:
    """Resize a (3, H, W) uint8 image to (3, size, size) with antialiased bilinear resampling."""
    if array.shape[1:] == (size, size):
        return array
    image = Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)), "RGB")
    image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(image).transpose(2, 0, 1)


def encode_geotiff(chip: Chip) -> bytes:
    """Encode an MS chip as an uncompressed GeoTIFF (original dtype, CRS kept)."""
    count, height, width = chip.array.shape
    profile = {
        "driver": "GTiff",
        "dtype": chip.array.dtype.name,
        "count": count,
        "height": height,
        "width": width,
        "interleave": "pixel",
    }
    if chip.crs is not None:
        profile["crs"] = chip.crs
    if chip.transform is not None:
        profile["transform"] = Affine.from_gdal(*chip.transform)
    with rasterio.MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(chip.array)
            dst.descriptions = chip.band_names
        return bytes(memfile.read())


def encode_png(array: np.ndarray) -> bytes:
    """Encode a (3, H, W) uint8 image as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)), "RGB").save(
        buffer, format="PNG", optimize=False, compress_level=6
    )
    return buffer.getvalue()


def process_item(
    source: Source, item: SourceItem, index: int, staging: Path, ms_size: int, rgb_size: int
) -> ChipRecord:
    """Read, validate and write one sample into ``staging``; return its record.

    Raises:
        CorruptRasterError: If the chip does not have the size the recipe asks for.
    """
    chip = source.read(item)
    if source.modality == "ms":
        _, height, width = chip.array.shape
        if (height, width) != (ms_size, ms_size):
            raise CorruptRasterError(
                item.path, f"is {height}x{width} pixels; the recipe expects {ms_size}x{ms_size}"
            )
        data = encode_geotiff(chip)
        suffix = ".tif"
        stats_array = chip.array
    else:
        if chip.array.ndim != 3 or chip.array.shape[0] != 3 or chip.array.dtype != np.uint8:
            raise CorruptRasterError(
                item.path,
                f"is not an 8-bit 3-band RGB image (shape {chip.array.shape}, {chip.array.dtype})",
            )
        stats_array = resize_rgb(chip.array, rgb_size)
        chip = Chip(stats_array, chip.band_names, chip.crs, chip.transform, chip.lonlat_bounds)
        data = encode_png(stats_array)
        suffix = ".png"
    staged = f"{index:08d}{suffix}"
    with atomic_path(staging / staged) as tmp:
        tmp.write_bytes(data)
    image = preview(chip)
    thumb = image.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX)
    values = stats_array.reshape(stats_array.shape[0], -1).astype(np.float64)
    centroid = chip.centroid
    return ChipRecord(
        index=index,
        staged=staged,
        sha256=hashlib.sha256(data).hexdigest(),
        height=int(stats_array.shape[1]),
        width=int(stats_array.shape[2]),
        bands=int(stats_array.shape[0]),
        crs=chip.crs,
        lon=centroid[0] if centroid else float("nan"),
        lat=centroid[1] if centroid else float("nan"),
        bounds=chip.lonlat_bounds,
        phash=int(str(imagehash.phash(image)), 16),
        thumb=np.asarray(thumb, dtype=np.uint8).tobytes(),
        band_sum=tuple(values.sum(axis=1).tolist()),
        band_sumsq=tuple((values * values).sum(axis=1).tolist()),
        pixels=int(values.shape[1]),
    )
