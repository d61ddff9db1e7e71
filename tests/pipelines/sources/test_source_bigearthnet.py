"""BigEarthNet-S2: the 11 real patches, packed as the release tar.gz, downloaded through pooch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from msrgb_bench.errors import CorruptRasterError, SourceLayoutError
from msrgb_bench.pipelines.sources import RemoteFile, SourceItem, create_source
from msrgb_bench.pipelines.sources.bigearthnet import BANDS, CLASSES, BigEarthNetS2

# Labels and EPSG codes of the sample patches, from the table in PROVENANCE.md.
PROVENANCE = {
    "S2A_MSIL2A_20170617T113321_36_85": (("Non-irrigated arable land", "Pastures"), 32629),
    "S2A_MSIL2A_20170617T113321_4_55": (("Pastures",), 32629),
    "S2A_MSIL2A_20171221T112501_56_35": (
        (
            "Complex cultivation patterns",
            "Land principally occupied by agriculture, with significant areas of natural "
            "vegetation",
            "Broad-leaved forest",
            "Transitional woodland/shrub",
        ),
        32629,
    ),
    "S2A_MSIL2A_20180510T94033_19_86": (("Coniferous forest", "Peatbogs"), 32635),
    "S2B_MSIL2A_20170914T093029_32_39": (
        (
            "Non-irrigated arable land",
            "Land principally occupied by agriculture, with significant areas of natural "
            "vegetation",
            "Broad-leaved forest",
        ),
        32634,
    ),
    "S2B_MSIL2A_20170924T093019_43_47": (
        ("Coniferous forest", "Transitional woodland/shrub"),
        32635,
    ),
    "S2B_MSIL2A_20170924T93021_41_29": (("Broad-leaved forest", "Mixed forest"), 32635),
    "S2B_MSIL2A_20170927T094019_66_56": (
        (
            "Land principally occupied by agriculture, with significant areas of natural "
            "vegetation",
            "Broad-leaved forest",
            "Mixed forest",
            "Transitional woodland/shrub",
        ),
        32635,
    ),
    "S2B_MSIL2A_20180421T114349_41_4": (
        ("Non-irrigated arable land", "Pastures", "Broad-leaved forest"),
        32629,
    ),
    "S2B_MSIL2A_20180421T114349_47_56": (("Non-irrigated arable land", "Pastures"), 32629),
    "S2B_MSIL2A_20180502T093039_43_14": (
        (
            "Complex cultivation patterns",
            "Land principally occupied by agriculture, with significant areas of natural "
            "vegetation",
            "Broad-leaved forest",
            "Transitional woodland/shrub",
        ),
        32634,
    ),
}


@pytest.fixture(scope="module")
def patches(sample: Path) -> Path:
    return sample / "bigearthnet_s2"


def test_download_extract_items_and_read_every_patch(
    bigearthnet_url: tuple[RemoteFile, ...], archives: dict, patches: Path, tmp_path: Path
) -> None:
    source = create_source(
        "bigearthnet-s2", cache_dir=tmp_path, files=bigearthnet_url, options={"progress": False}
    )
    root = source.prepare()
    assert root.name == "BigEarthNet-v1.0"
    assert (tmp_path / "downloads" / "BigEarthNet-S2-v1.0.tar.gz").is_file()
    assert source.used_files == {"BigEarthNet-S2-v1.0.tar.gz": archives["bigearthnet-s2"].sha256}
    assert source.multilabel
    items = source.items(root)
    assert [item.key for item in items] == sorted(PROVENANCE)
    for item in items:
        labels, epsg = PROVENANCE[item.key]
        assert item.labels == labels
        assert item.class_name == labels[0]
        assert set(labels) <= set(CLASSES)
        assert item.place == f"bigearthnet:{item.key}"
        assert item.source_path == item.key

        chip = source.read(item)
        assert chip.array.shape == (12, 120, 120)
        assert chip.array.dtype == np.uint16
        assert chip.band_names == BANDS == BigEarthNetS2.band_names
        assert chip.crs == f"EPSG:{epsg}"
        # The 10 m grid is the one in the labels metadata.
        meta = json.loads((patches / item.key / f"{item.key}_labels_metadata.json").read_text())
        assert chip.transform == (
            meta["coordinates"]["ulx"],
            10.0,
            0.0,
            meta["coordinates"]["uly"],
            0.0,
            -10.0,
        )
        assert chip.lonlat_bounds is not None
        west, south, east, north = chip.lonlat_bounds
        assert -11 < west < east < 32 and 36 < south < north < 71  # Europe
        _check_bands_against_the_files(chip.array, patches / item.key)


def _check_bands_against_the_files(array: np.ndarray, patch: Path) -> None:
    for index, band in enumerate(BANDS):
        with rasterio.open(patch / f"{patch.name}_{band}.tif") as src:
            native = src.read(1)
        if native.shape == (120, 120):  # 10 m bands are read as they are
            np.testing.assert_array_equal(array[index], native)
        else:  # 20 m and 60 m bands are upsampled: same mean, and the right resolution
            assert native.shape in {(60, 60), (20, 20)}
            assert abs(array[index].mean() - native.mean()) < 0.02 * native.mean()
            factor = 120 // native.shape[0]
            blocks = array[index].reshape(native.shape[0], factor, native.shape[1], factor)
            assert np.corrcoef(blocks.mean(axis=(1, 3)).ravel(), native.ravel())[0, 1] > 0.95


def _copy_patch(
    patches: Path, tmp_path: Path, name: str = "S2A_MSIL2A_20170617T113321_4_55"
) -> Path:
    root = tmp_path / "BigEarthNet-v1.0"
    shutil.copytree(patches / name, root / name)
    return root / name


def _item(patch: Path) -> SourceItem:
    source = BigEarthNetS2(path=patch.parent)
    (item,) = source.items(patch.parent)
    return item


def test_a_missing_band_names_the_file(patches: Path, tmp_path: Path) -> None:
    patch = _copy_patch(patches, tmp_path)
    (patch / f"{patch.name}_B11.tif").unlink()
    with pytest.raises(CorruptRasterError, match=rf"{patch.name}_B11\.tif: missing"):
        BigEarthNetS2().read(_item(patch))


def test_a_band_on_the_wrong_grid_names_the_file(patches: Path, tmp_path: Path) -> None:
    patch = _copy_patch(patches, tmp_path)
    # A 20 m band replaced by a 10 m one: 120x120 where 60x60 is expected.
    shutil.copyfile(patch / f"{patch.name}_B02.tif", patch / f"{patch.name}_B05.tif")
    with pytest.raises(
        CorruptRasterError, match=rf"{patch.name}_B05\.tif: 120x120 pixels, expected 60x60"
    ):
        BigEarthNetS2().read(_item(patch))


def test_a_band_of_another_patch_names_the_file(patches: Path, tmp_path: Path) -> None:
    patch = _copy_patch(patches, tmp_path)
    other = "S2A_MSIL2A_20170617T113321_36_85"  # same tile and CRS, another place
    shutil.copyfile(patches / other / f"{other}_B04.tif", patch / f"{patch.name}_B04.tif")
    with pytest.raises(CorruptRasterError, match=rf"{patch.name}_B04\.tif: footprint"):
        BigEarthNetS2().read(_item(patch))


def test_malformed_or_missing_labels_metadata_is_a_layout_error(
    patches: Path, tmp_path: Path
) -> None:
    patch = _copy_patch(patches, tmp_path)
    metadata = patch / f"{patch.name}_labels_metadata.json"
    metadata.write_text('{"labels": []}')
    with pytest.raises(SourceLayoutError, match="no 'labels' list"):
        BigEarthNetS2().items(patch.parent)
    metadata.write_text("{not json")
    with pytest.raises(SourceLayoutError, match="unreadable labels metadata"):
        BigEarthNetS2().items(patch.parent)
    # Another patch folder without its metadata: the root is found, the patch refused.
    second = _copy_patch(patches, tmp_path, "S2B_MSIL2A_20180421T114349_41_4")
    metadata.write_text('{"labels": ["Pastures"]}')
    (second / f"{second.name}_labels_metadata.json").unlink()
    with pytest.raises(SourceLayoutError, match=f"{second.name}_labels_metadata.json: missing"):
        BigEarthNetS2().items(patch.parent)
