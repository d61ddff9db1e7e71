"""Bad rasters are refused by ``read()`` with an error naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from msrgb_bench.errors import CorruptRasterError
from msrgb_bench.pipelines.sources import SourceItem
from msrgb_bench.pipelines.sources.eurosat import EuroSATMS, EuroSATRGB


@pytest.fixture()
def real_tif(sample: Path) -> Path:
    return sorted((sample / "eurosat_ms" / "Forest").glob("*.tif"))[0]


def _item(source: EuroSATMS | EuroSATRGB, folder: Path) -> SourceItem:
    (item,) = source.items(folder)
    return item


def _write_variant(real: Path, folder: Path, array: np.ndarray, **profile: object) -> Path:
    """Write ``array`` with the real chip's georeference as ``folder/Forest/Forest_1.tif``."""
    with rasterio.open(real) as src:
        meta = src.profile | {"count": array.shape[0], "dtype": array.dtype.name} | profile
    target = folder / "Forest" / "Forest_1.tif"
    target.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(target, "w", **meta) as dst:
        dst.write(array)
    return target


def _real_array(real: Path) -> np.ndarray:
    with rasterio.open(real) as src:
        return src.read()


def test_the_real_chip_passes(real_tif: Path, tmp_path: Path) -> None:
    path = _write_variant(real_tif, tmp_path, _real_array(real_tif))
    chip = EuroSATMS().read(_item(EuroSATMS(), tmp_path))
    np.testing.assert_array_equal(chip.array, _real_array(real_tif))
    assert path.is_file()


def test_a_truncated_tif(real_tif: Path, tmp_path: Path) -> None:
    target = tmp_path / "Forest" / "Forest_1.tif"
    target.parent.mkdir()
    data = real_tif.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptRasterError, match=r"Forest_1\.tif: unreadable or truncated raster"):
        EuroSATMS().read(_item(EuroSATMS(), tmp_path))


def test_a_truncated_jpeg(sample: Path, tmp_path: Path) -> None:
    real = sorted((sample / "eurosat_rgb" / "Forest").glob("*.jpg"))[0]
    target = tmp_path / "Forest" / "Forest_1.jpg"
    target.parent.mkdir()
    data = real.read_bytes()
    target.write_bytes(data[: len(data) - 40])
    with pytest.raises(CorruptRasterError, match=r"Forest_1\.jpg: .*Premature end of JPEG"):
        EuroSATRGB().read(_item(EuroSATRGB(), tmp_path))


def test_a_wrong_band_count(real_tif: Path, tmp_path: Path) -> None:
    _write_variant(real_tif, tmp_path, _real_array(real_tif)[:12])
    with pytest.raises(CorruptRasterError, match=r"Forest_1\.tif: 12 bands, expected 13"):
        EuroSATMS().read(_item(EuroSATMS(), tmp_path))


def test_a_wrong_dtype(real_tif: Path, tmp_path: Path) -> None:
    _write_variant(real_tif, tmp_path, _real_array(real_tif).astype(np.float32) / 10000)
    with pytest.raises(CorruptRasterError, match=r"Forest_1\.tif: dtype float32, expected uint16"):
        EuroSATMS().read(_item(EuroSATMS(), tmp_path))


def test_a_wrong_size(real_tif: Path, tmp_path: Path) -> None:
    _write_variant(real_tif, tmp_path, _real_array(real_tif)[:, :32, :32], width=32, height=32)
    with pytest.raises(CorruptRasterError, match=r"Forest_1\.tif: 32x32 pixels, expected 64x64"):
        EuroSATMS().read(_item(EuroSATMS(), tmp_path))


def test_an_all_nodata_chip(real_tif: Path, tmp_path: Path) -> None:
    _write_variant(real_tif, tmp_path, np.full((13, 64, 64), 65535, np.uint16), nodata=65535)
    with pytest.raises(CorruptRasterError, match=r"Forest_1\.tif: every pixel is nodata \(65535\)"):
        EuroSATMS().read(_item(EuroSATMS(), tmp_path))


def test_an_all_zero_chip(real_tif: Path, tmp_path: Path) -> None:
    _write_variant(real_tif, tmp_path, np.zeros((13, 64, 64), np.uint16))
    with pytest.raises(CorruptRasterError, match=r"Forest_1\.tif: every pixel is zero"):
        EuroSATMS().read(_item(EuroSATMS(), tmp_path))


def test_a_chip_with_some_nodata_passes(real_tif: Path, tmp_path: Path) -> None:
    array = _real_array(real_tif)
    array[:, :10, :] = 0
    _write_variant(real_tif, tmp_path, array, nodata=0)
    chip = EuroSATMS().read(_item(EuroSATMS(), tmp_path))
    assert int((chip.array == 0).sum()) == 13 * 10 * 64


def test_a_missing_file(real_tif: Path, tmp_path: Path) -> None:
    path = _write_variant(real_tif, tmp_path, _real_array(real_tif))
    item = _item(EuroSATMS(), tmp_path)
    path.unlink()
    with pytest.raises(CorruptRasterError, match=r"Forest_1\.tif: missing"):
        EuroSATMS().read(item)
