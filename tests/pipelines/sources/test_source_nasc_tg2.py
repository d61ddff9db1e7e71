"""NaSC-TG2: no real sample exists, so a small archive in the assumed layout is generated here."""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from source_archives import digests

from msrgb_bench.errors import ChecksumMismatchError, CorruptRasterError, DownloadError
from msrgb_bench.pipelines.sources import RemoteFile, create_source
from msrgb_bench.pipelines.sources.nasc_tg2 import BANDS, CLASSES, NaSCTG2

PER_CLASS = 2
EPSG = 32650  # UTM 50N (eastern China)


def _scene(rng: np.random.Generator, bands: int) -> np.ndarray:
    """A smooth 14-band scene: a random field blurred by cumulative sums, scaled to 12 bit."""
    field = rng.normal(size=(bands, 128, 128)).cumsum(axis=1).cumsum(axis=2)
    field -= field.min(axis=(1, 2), keepdims=True)
    field /= field.max(axis=(1, 2), keepdims=True)
    return (200 + 3800 * field).astype(np.uint16)


@pytest.fixture(scope="module")
def nasc_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """``NaSC-TG2.zip`` holding ``NaSC-TG2/MS/<class>/<class>_<n>.tif`` and ``RGB/...jpg``."""
    work = tmp_path_factory.mktemp("nasc")
    rng = np.random.default_rng(7)
    written: dict[str, np.ndarray] = {}
    archive = work / "NaSC-TG2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for c, name in enumerate(CLASSES):
            for n in range(1, PER_CLASS + 1):
                stem = f"{name}_{n}"
                ms = _scene(rng, len(BANDS))
                tif = work / f"{stem}.tif"
                transform = Affine(100, 0, 400_000 + 20_000 * c, 0, -100, 4_000_000 + 20_000 * n)
                with rasterio.open(
                    tif, "w", driver="GTiff", width=128, height=128, count=len(BANDS),
                    dtype="uint16", crs=f"EPSG:{EPSG}", transform=transform,
                ) as dst:  # fmt: skip
                    dst.write(ms)
                zf.write(tif, f"NaSC-TG2/MS/{name}/{stem}.tif")
                jpg = work / f"{stem}.jpg"
                rgb = (ms[[3, 2, 1]] // 16).astype(np.uint8)
                with (
                    warnings.catch_warnings(category=NotGeoreferencedWarning, action="ignore"),
                    rasterio.open(
                        jpg, "w", driver="JPEG", width=128, height=128, count=3, dtype="uint8"
                    ) as dst,
                ):
                    dst.write(rgb)
                zf.write(jpg, f"NaSC-TG2/RGB/{name}/{stem}.jpg")
                written[f"{name}/{stem}"] = ms
    return archive, written


def test_source_archive_without_pins_is_accepted_and_read(
    nasc_archive: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    archive, written = nasc_archive
    source = create_source("nasc-tg2", path=archive, cache_dir=tmp_path)
    root = source.prepare()
    assert root.as_posix().endswith("NaSC-TG2/MS")
    assert source.used_files == {"NaSC-TG2.zip": hashlib.sha256(archive.read_bytes()).hexdigest()}
    items = source.items(root)
    assert [item.key for item in items] == sorted(written)
    assert len(items) == len(CLASSES) * PER_CLASS
    for item in items:
        assert item.place == f"nasc-tg2:{item.key}"
        chip = source.read(item)
        assert chip.array.shape == (14, 128, 128)
        assert chip.array.dtype == np.uint16
        np.testing.assert_array_equal(chip.array, written[item.key])
        assert chip.band_names == BANDS
        assert chip.crs == f"EPSG:{EPSG}"
        assert chip.lonlat_bounds is not None
        west, south, east, north = chip.lonlat_bounds
        assert 110 < west < east < 125 and 30 < south < north < 45  # eastern China


def test_pinned_checksums_are_enforced_when_given(
    nasc_archive: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    archive, _ = nasc_archive
    md5, sha256 = digests(archive)
    good = RemoteFile(filename="NaSC-TG2.zip", url="", sha256=sha256)
    source = NaSCTG2(path=archive, cache_dir=tmp_path, files=(good,))
    source.prepare()
    assert source.used_files == {"NaSC-TG2.zip": sha256}
    bad = RemoteFile(filename="NaSC-TG2.zip", url="", md5="f" * 32)
    with pytest.raises(
        ChecksumMismatchError, match=f"expected NaSC-TG2.zip md5:{'f' * 32}.*md5:{md5}"
    ):
        NaSCTG2(path=archive, cache_dir=tmp_path / "other", files=(bad,)).prepare()
    assert not (tmp_path / "other").exists()  # refused before anything was extracted


def test_without_a_path_it_says_how_to_get_the_data(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"nasc-tg2: .*--source nasc-tg2=PATH"):
        NaSCTG2(cache_dir=tmp_path).prepare()


def test_a_chip_with_13_bands_is_refused(
    nasc_archive: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    folder = tmp_path / "nasc" / "desert"
    folder.mkdir(parents=True)
    path = folder / "desert_9.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=128, height=128, count=13, dtype="uint16",
        crs=f"EPSG:{EPSG}", transform=Affine(100, 0, 400_000, 0, -100, 4_000_000),
    ) as dst:  # fmt: skip
        dst.write(np.full((13, 128, 128), 500, dtype=np.uint16))
    source = NaSCTG2(path=tmp_path / "nasc", cache_dir=tmp_path / "cache")
    (item,) = source.items(source.prepare())
    with pytest.raises(CorruptRasterError, match=r"desert_9\.tif: 13 bands, expected 14"):
        source.read(item)
