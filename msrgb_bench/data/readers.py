"""Decode one sample file of a built dataset folder into a ``(C, H, W)`` array.

Teacher (``ms``) samples are GeoTIFFs read with rasterio in their original dtype; student
(``rgb``) samples are 8-bit RGB PNGs read with Pillow. Both the per-file dataset path and the
packer decode through these functions, so the two paths give identical arrays.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, UnidentifiedImageError
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile

from msrgb_bench.errors import CorruptRasterError


def read_ms(path: str | Path, band_indexes: Sequence[int] | None = None) -> np.ndarray:
    """Read a teacher GeoTIFF.

    Args:
        path: The GeoTIFF.
        band_indexes: 0-based bands to read, in this order; all bands when ``None``.

    Returns:
        ``(C, H, W)`` array in the file's dtype.

    Raises:
        CorruptRasterError: If the file cannot be read as a raster.
    """
    indexes = None if band_indexes is None else [int(i) + 1 for i in band_indexes]
    try:
        with rasterio.open(path) as src:
            return np.asarray(src.read(indexes))
    except (RasterioError, IndexError, ValueError) as exc:
        raise CorruptRasterError(path, f"unreadable GeoTIFF ({exc})") from exc


def read_rgb(path: str | Path) -> np.ndarray:
    """Read a student PNG as a ``(3, H, W)`` uint8 array.

    Raises:
        CorruptRasterError: If the file is not a readable RGB image.
    """
    try:
        with Image.open(path) as img:
            return _rgb_array(img, path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise CorruptRasterError(path, f"unreadable image ({exc})") from exc


def read_sample(
    path: str | Path, modality: str, band_indexes: Sequence[int] | None = None
) -> np.ndarray:
    """Read one sample file of ``modality`` (``"ms"`` or ``"rgb"``) as ``(C, H, W)``."""
    if modality == "ms":
        return read_ms(path, band_indexes)
    array = read_rgb(path)
    return array if band_indexes is None else array[list(band_indexes)]


def decode_sample(data: bytes, modality: str, path: str | Path) -> np.ndarray:
    """Decode the bytes of a sample file already read into memory (all bands).

    Args:
        data: The file's bytes.
        modality: ``"ms"`` (GeoTIFF) or ``"rgb"`` (PNG).
        path: The file the bytes came from, for error messages.

    Raises:
        CorruptRasterError: If the bytes cannot be decoded.
    """
    if modality == "ms":
        try:
            with MemoryFile(data) as mem, mem.open() as src:
                return np.asarray(src.read())
        except (RasterioError, ValueError) as exc:
            raise CorruptRasterError(path, f"unreadable GeoTIFF ({exc})") from exc
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _rgb_array(img, path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise CorruptRasterError(path, f"unreadable image ({exc})") from exc


def check_array(
    array: np.ndarray, shape: tuple[int, int, int], path: str | Path, dtype: np.dtype | None = None
) -> None:
    """Check a decoded sample against the shape (and dtype) the dataset promises.

    Raises:
        CorruptRasterError: Naming ``path`` and the mismatch.
    """
    if tuple(array.shape) != tuple(shape):
        raise CorruptRasterError(
            path, f"has shape {tuple(array.shape)} (C, H, W), dataset.json promises {shape}"
        )
    if dtype is not None and array.dtype != dtype:
        raise CorruptRasterError(path, f"has dtype {array.dtype}, expected {dtype}")


def _rgb_array(img: Image.Image, path: str | Path) -> np.ndarray:
    if img.mode != "RGB":
        raise CorruptRasterError(path, f"is a {img.mode} image, expected 8-bit RGB")
    return np.ascontiguousarray(np.asarray(img).transpose(2, 0, 1))
