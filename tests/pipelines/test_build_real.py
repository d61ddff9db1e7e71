"""Builds from the real offline sample in ../shared/data, given as ``--source`` folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from msrgb_bench.data.manifest import read_info, read_manifest
from msrgb_bench.errors import CorruptRasterError
from msrgb_bench.pipelines.build import build_dataset, sample_id_for
from msrgb_bench.sample_data import find_sample_data

SAMPLE = find_sample_data()
pytestmark = pytest.mark.skipif(SAMPLE is None, reason="offline sample data not found")


def _sample(name: str) -> Path:
    assert SAMPLE is not None
    return SAMPLE / name


@pytest.fixture(scope="module")
def s2s_eu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("s2s") / "s2s-eu"
    build_dataset(
        "s2s-eu",
        out,
        sources={"eurosat-ms": _sample("eurosat_ms"), "eurosat-rgb": _sample("eurosat_rgb")},
        progress=False,
    )
    return out


def test_s2s_eu_from_source_folders(s2s_eu: Path) -> None:
    manifest = read_manifest(s2s_eu)
    info = read_info(s2s_eu)
    counts = manifest.groupby("modality").size().to_dict()
    assert counts == {"ms": 200, "rgb": 2000}
    assert info.removed_duplicates == 0
    assert info.classes[0] == "SeaLake"  # the released code's class order
    assert info.extra["teacher_default_bands"] == [
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B10", "B11", "B12"
    ]  # fmt: skip
    assert info.split_method["ms"].startswith("spatial blocks")
    assert info.split_method["rgb"].startswith("stratified")
    per_class = manifest[manifest["modality"] == "ms"].groupby("label_name").size()
    assert set(per_class) == {20}
    # Test and train MS chips lie in different 1-degree blocks.
    ms = manifest[manifest["modality"] == "ms"]
    blocks = {
        s: set(zip(np.floor(g.lon), np.floor(g.lat), strict=True)) for s, g in ms.groupby("split")
    }
    assert not blocks["train"] & blocks["test"]


def test_ms_chips_are_the_original_pixels_and_crs(s2s_eu: Path) -> None:
    manifest = read_manifest(s2s_eu)
    row = manifest[manifest["sample_id"] == sample_id_for("eurosat-ms", "Forest/Forest_21")].iloc[0]
    original = _sample("eurosat_ms") / "Forest" / "Forest_21.tif"
    with rasterio.open(original) as src, rasterio.open(s2s_eu / row.path) as out:
        np.testing.assert_array_equal(src.read(), out.read())
        assert out.crs == src.crs and out.transform == src.transform
        assert out.dtypes[0] == "uint16" and out.count == 13
    assert row.crs == f"EPSG:{rasterio.open(original).crs.to_epsg()}"
    assert 2 < row.lon < 30 and 40 < row.lat < 60
    assert row.source_path.endswith("Forest/Forest_21.tif")


def test_shared_places_go_to_one_modality(tmp_path: Path) -> None:
    report = build_dataset(
        "s2s-eu",
        tmp_path / "paired",
        sources={"eurosat-ms": _sample("eurosat_ms"), "eurosat-rgb": _sample("eurosat_rgb_paired")},
        progress=False,
    )
    manifest = read_manifest(report.out)
    assert report.shared_places_dropped == 200
    assert len(manifest) == 200
    stems = manifest["source_path"].str.rsplit(".", n=1).str[0]
    ms_ids = set(stems[manifest["modality"] == "ms"])
    rgb_ids = set(stems[manifest["modality"] == "rgb"])
    assert ms_ids.isdisjoint(rgb_ids) and 60 < len(ms_ids) < 140


def test_cross_modal_near_duplicates_are_removed(tmp_path: Path) -> None:
    """Paired RGB jpgs under new names: only the perceptual hash links them to the MS chips."""
    renamed = tmp_path / "renamed"
    for folder in sorted(_sample("eurosat_rgb_paired").iterdir()):
        (renamed / folder.name).mkdir(parents=True)
        for jpg in sorted(folder.glob("*.jpg")):
            cls, number = jpg.stem.rsplit("_", 1)
            shutil.copy(jpg, renamed / folder.name / f"{cls}_9{number}.jpg")
    report = build_dataset(
        "s2s-eu",
        tmp_path / "dd",
        sources={"eurosat-ms": _sample("eurosat_ms"), "eurosat-rgb": renamed},
        progress=False,
    )
    assert report.shared_places_dropped == 0
    assert report.removed_duplicates >= 150  # 186 of 200 on this sample
    manifest = read_manifest(report.out)
    assert (manifest["modality"] == "ms").sum() == 200  # the teacher side is kept
    assert "near-duplicates" in (report.out / "README.md").read_text().lower()


def test_eu_resisc_drops_and_counts_unmapped_classes(tmp_path: Path) -> None:
    report = build_dataset(
        "eu-resisc",
        tmp_path / "eu-resisc",
        sources={"eurosat-ms": _sample("eurosat_ms"), "resisc45": _sample("resisc45")},
        progress=False,
    )
    assert report.dropped_unmapped == {
        ("resisc45", "beach"): 10, ("resisc45", "desert"): 10, ("resisc45", "mountain"): 10
    }  # fmt: skip
    manifest = read_manifest(report.out)
    rgb = manifest[manifest["modality"] == "rgb"]
    assert rgb.groupby("label_name").size().to_dict() == {
        "Forest": 10, "Industrial": 10, "River": 10, "SeaLake": 10
    }  # fmt: skip
    assert set(rgb["height"]) == {128}


def test_m2s_gl_keeps_multi_labels(tmp_path: Path) -> None:
    report = build_dataset(
        "m2s-gl",
        tmp_path / "m2s",
        sources={"bigearthnet-s2": _sample("bigearthnet_s2"), "resisc45": _sample("resisc45")},
        progress=False,
    )
    manifest = read_manifest(report.out)
    info = read_info(report.out)
    assert info.multilabel
    patch = "S2A_MSIL2A_20170617T113321_36_85"
    row = manifest[manifest["sample_id"] == sample_id_for("bigearthnet-s2", patch)].iloc[0]
    # "Non-irrigated arable land; Pastures" -> crop (primary: first label that maps) and pasture.
    assert info.classes[row.label] == "crop"
    assert sorted(info.classes[i] for i in row.labels) == ["crop", "pasture"]
    with rasterio.open(report.out / row.path) as src:
        assert (src.count, src.width, src.height, src.dtypes[0]) == (12, 120, 120, "uint16")


def test_corrupt_source_file_fails_cleanly(tmp_path: Path) -> None:
    folder = tmp_path / "ms"
    shutil.copytree(_sample("eurosat_ms"), folder)
    victim = folder / "River" / sorted(p.name for p in (folder / "River").glob("*.tif"))[3]
    victim.write_bytes(victim.read_bytes()[:5000])
    out = tmp_path / "out"
    with pytest.raises(CorruptRasterError) as info:
        build_dataset(
            "s2s-eu",
            out,
            sources={"eurosat-ms": folder, "eurosat-rgb": _sample("eurosat_rgb")},
            progress=False,
        )
    assert info.value.path.name == victim.name
    assert not out.exists() and not list(tmp_path.glob(".out*"))
