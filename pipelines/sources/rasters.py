"""Reading and validating source rasters: the checks every chip of every source passes.

Everything is read with rasterio (GDAL), GeoTIFFs and JPEGs alike. A problem raises
:class:`~msrgb_bench.errors.CorruptRasterError` naming the file and what is wrong: unreadable or
truncated (GDAL's own message is kept), wrong band count, dtype or size, or no content (every
pixel nodata, NaN or zero).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import transform_bounds

from msrgb_bench.errors import CorruptRasterError
from msrgb_bench.pipelines.sources.base import Chip

WGS84 = "EPSG:4326"


def crs_string(crs: Any) -> str | None:
    """Return ``EPSG:xxxx`` for a rasterio CRS with an EPSG code, its WKT otherwise, or ``None``."""
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else str(crs.to_wkt())


def lonlat_bounds(crs: Any, bounds: Sequence[float]) -> tuple[float, float, float, float] | None:
    """Return the WGS84 footprint (west, south, east, north) of ``bounds`` given in ``crs``."""
    if crs is None:
        return None
    west, south, east, north = transform_bounds(crs, WGS84, *bounds, densify_pts=21)
    return (float(west), float(south), float(east), float(north))


def gdal_transform(transform: Any) -> tuple[float, float, float, float, float, float]:
    """Return an affine transform as the 6 GDAL-order floats (x0, dx, rx, y0, ry, dy)."""
    x0, dx, rx, y0, ry, dy = (float(v) for v in transform.to_gdal())
    return (x0, dx, rx, y0, ry, dy)


def _reason(exc: BaseException) -> str:
    """Return GDAL's own message behind a rasterio error (rasterio chains it as the cause)."""
    cause = exc.__cause__ or exc.__context__
    return str(cause) if cause is not None and str(cause) else str(exc)


@contextmanager
def open_raster(path: str | Path) -> Iterator[Any]:
    """Open a raster with rasterio, turning any read failure inside the block into an error.

    Yields:
        The open ``rasterio`` dataset.

    Raises:
        CorruptRasterError: The file is missing, truncated or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptRasterError(path, "missing")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                yield src
    except RasterioError as exc:
        raise CorruptRasterError(path, f"unreadable or truncated raster ({_reason(exc)})") from exc


def check_layout(
    src: Any,
    path: str | Path,
    *,
    bands: int,
    dtypes: Sequence[str],
    size: tuple[int, int] | None = None,
) -> None:
    """Check an open raster's band count, dtype and (optionally) height x width.

    Raises:
        CorruptRasterError: Naming the file and the mismatch.
    """
    if src.count != bands:
        raise CorruptRasterError(path, f"{src.count} bands, expected {bands}")
    found = sorted(set(src.dtypes))
    if len(found) != 1 or found[0] not in dtypes:
        raise CorruptRasterError(path, f"dtype {'/'.join(found)}, expected {' or '.join(dtypes)}")
    if size is not None and (src.height, src.width) != tuple(size):
        raise CorruptRasterError(
            path, f"{src.height}x{src.width} pixels, expected {size[0]}x{size[1]}"
        )


def check_content(path: str | Path, array: np.ndarray, nodata: float | None = None) -> None:
    """Refuse a chip without content: every pixel nodata, NaN, or zero.

    Raises:
        CorruptRasterError: Naming the file and the problem.
    """
    if np.issubdtype(array.dtype, np.floating) and bool(np.isnan(array).all()):
        raise CorruptRasterError(path, "every pixel is NaN (an empty chip)")
    if nodata is not None and bool((array == nodata).all()):
        raise CorruptRasterError(path, f"every pixel is nodata ({nodata:g}), an empty chip")
    if not array.any():
        raise CorruptRasterError(path, "every pixel is zero (an empty chip)")


def read_raster(
    path: str | Path,
    *,
    bands: int,
    dtypes: Sequence[str],
    band_names: Sequence[str],
    size: tuple[int, int] | None = None,
) -> Chip:
    """Read a whole raster as a validated :class:`Chip` in its original dtype.

    Args:
        path: GeoTIFF, TIFF or JPEG file.
        bands: Required band count.
        dtypes: Accepted dtypes (numpy names, e.g. ``"uint16"``).
        band_names: Name of each band, in file order.
        size: Required (height, width), or ``None`` to accept any.

    Returns:
        The chip; ``crs``, ``transform`` and ``lonlat_bounds`` are set when the file has a CRS.

    Raises:
        CorruptRasterError: Naming the file and what is wrong with it.
    """
    with open_raster(path) as src:
        check_layout(src, path, bands=bands, dtypes=dtypes, size=size)
        array = src.read()
        georeferenced = src.crs is not None
        crs = crs_string(src.crs)
        transform = gdal_transform(src.transform) if georeferenced else None
        footprint = lonlat_bounds(src.crs, src.bounds) if georeferenced else None
        nodata = src.nodata
    check_content(path, array, nodata)
    return Chip(
        array=array,
        band_names=tuple(band_names),
        crs=crs,
        transform=transform,
        lonlat_bounds=footprint,
    )


def read_band_resampled(
    path: str | Path,
    *,
    out_shape: tuple[int, int],
    dtypes: Sequence[str],
    size: tuple[int, int] | None = None,
    resampling: Resampling = Resampling.bilinear,
) -> tuple[np.ndarray, Any, Any]:
    """Read a single-band raster resampled onto ``out_shape`` (same footprint, finer grid).

    Args:
        path: Single-band GeoTIFF.
        out_shape: (height, width) of the target grid.
        dtypes: Accepted dtypes.
        size: Required native (height, width), or ``None`` to accept any.
        resampling: rasterio resampling method (bilinear by default).

    Returns:
        The (H, W) array in the file's dtype, the file's CRS and its bounds.

    Raises:
        CorruptRasterError: Naming the file and what is wrong with it.
    """
    with open_raster(path) as src:
        check_layout(src, path, bands=1, dtypes=dtypes, size=size)
        array = src.read(1, out_shape=out_shape, resampling=resampling)
        return array, src.crs, src.bounds
