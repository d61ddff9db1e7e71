"""End-to-end builds of the offline demo recipe and the build's fault handling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from msrgb_bench.data.manifest import (
    MANIFEST_COLUMNS,
    content_hash,
    read_info,
    read_manifest,
    verify_files,
)
from msrgb_bench.errors import FileProblemError, RecipeError, UnknownClassError
from msrgb_bench.pipelines.build import build_dataset
from msrgb_bench.pipelines.recipe import load_recipe
from msrgb_bench.pipelines.sources import create_source


def test_demo_folder_honours_the_contract(tiny_demo) -> None:
    root = tiny_demo.out
    manifest = read_manifest(root)
    info = read_info(root)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    # tiny: 12 MS and 16 RGB samples per class, 10 classes, nothing dropped.
    assert (manifest["modality"] == "ms").sum() == 120
    assert (manifest["modality"] == "rgb").sum() == 160
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert manifest["sample_id"].is_unique
    verify_files(root, manifest)
    assert info.content_hash == content_hash(manifest)
    assert info.classes[manifest["label"].iloc[0]] == manifest["label_name"].iloc[0]
    assert info.ms_bands[-1] == "B8A" and len(info.ms_bands) == 13
    assert (root / "README.md").read_text().count("This dataset is synthetic") == 1
    for row in manifest.itertuples():
        assert row.path == f"{row.modality}/{row.split}/{row.label_name}/{row.sample_id}" + (
            ".tif" if row.modality == "ms" else ".png"
        )


def test_ms_chips_are_georeferenced_uint16_geotiffs(tiny_demo) -> None:
    manifest = read_manifest(tiny_demo.out)
    ms = manifest[manifest["modality"] == "ms"].iloc[:5]
    for row in ms.itertuples():
        with rasterio.open(tiny_demo.out / row.path) as src:
            assert (src.count, src.dtypes[0], src.width, src.height) == (13, "uint16", 64, 64)
            assert src.crs.to_epsg() == int(row.crs.split(":")[1])
            assert 32629 <= src.crs.to_epsg() <= 32635  # UTM zones over Europe
            assert src.res == pytest.approx((10.0, 10.0))
            assert src.descriptions[3] == "B04"
        assert -5 <= row.lon <= 26 and 41 <= row.lat <= 59
    rgb = manifest[manifest["modality"] == "rgb"].iloc[0]
    image = Image.open(tiny_demo.out / rgb.path)
    assert image.mode == "RGB" and image.size == (64, 64)
    assert rgb.lon < -70  # other places: North America


def test_splits_are_spatially_disjoint(tiny_demo) -> None:
    manifest = read_manifest(tiny_demo.out)
    for modality in ("ms", "rgb"):
        part = manifest[manifest["modality"] == modality]
        blocks = {
            split: {(math.floor(r.lon), math.floor(r.lat)) for r in rows.itertuples()}
            for split, rows in part.groupby("split")
        }
        assert not blocks["train"] & blocks["test"]
        assert not blocks["train"] & blocks["val"]
        assert not blocks["val"] & blocks["test"]


def test_norm_stats_are_train_only_band_statistics(tiny_demo) -> None:
    manifest = read_manifest(tiny_demo.out)
    info = read_info(tiny_demo.out)
    train = manifest[(manifest["modality"] == "ms") & (manifest["split"] == "train")]
    stack = np.stack([rasterio.open(tiny_demo.out / p).read() for p in train["path"]]).astype(
        np.float64
    )
    np.testing.assert_allclose(info.norm["ms"]["mean"], stack.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(info.norm["ms"]["std"], stack.std(axis=(0, 2, 3)), rtol=1e-5)
    rgb_train = manifest[(manifest["modality"] == "rgb") & (manifest["split"] == "train")]
    rgb = np.stack([np.asarray(Image.open(tiny_demo.out / p)) for p in rgb_train["path"]]).astype(
        float
    )
    np.testing.assert_allclose(info.norm["rgb"]["mean"], rgb.mean(axis=(0, 1, 2)), rtol=1e-6)


def test_rebuild_is_byte_identical(tiny_demo, tmp_path: Path) -> None:
    again = build_dataset("demo", tmp_path / "again", size="tiny", progress=False)
    for name in ("manifest.parquet", "dataset.json", "README.md"):
        assert (again.out / name).read_bytes() == (tiny_demo.out / name).read_bytes()
    other = build_dataset("demo", tmp_path / "seed1", size="tiny", seed=1, progress=False)
    assert read_info(other.out).content_hash != read_info(tiny_demo.out).content_hash


def test_parallel_build_gives_the_same_manifest(tiny_demo, tmp_path: Path) -> None:
    report = build_dataset("demo", tmp_path / "par", size="tiny", workers=2, progress=False)
    assert (report.out / "manifest.parquet").read_bytes() == (
        tiny_demo.out / "manifest.parquet"
    ).read_bytes()


def _band_means(array: np.ndarray) -> np.ndarray:
    return array.reshape(array.shape[0], -1).mean(axis=1)


def test_ms_carries_information_rgb_lacks() -> None:
    """Pasture/HerbaceousVegetation and River/Highway: separable in MS, barely in RGB."""
    scores = {}
    for name in ("synthetic-ms", "synthetic-rgb"):
        source = create_source(name, options={"size": 30, "chip_size": 32})
        items = source.items(source.prepare())
        for pair in (("Pasture", "HerbaceousVegetation"), ("River", "Highway")):
            chosen = [i for i in items if i.class_name in pair]
            features = np.array([_band_means(source.read(i).array) for i in chosen])
            features = (features - features.mean(0)) / (features.std(0) + 1e-9)
            target = [i.class_name == pair[0] for i in chosen]
            scores[name, pair[0]] = cross_val_score(
                LogisticRegression(max_iter=1000), features, target, cv=5
            ).mean()
    assert scores["synthetic-ms", "Pasture"] > 0.95 and scores["synthetic-ms", "River"] > 0.95
    assert scores["synthetic-rgb", "Pasture"] < 0.7 and scores["synthetic-rgb", "River"] < 0.85


def test_killed_build_is_finished_by_a_rerun(tiny_demo, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    partial = tmp_path / ".demo.partial"
    (partial / "_chips").mkdir(parents=True)
    (partial / "_chips" / "00000003.tif").write_bytes(b"half a file")
    report = build_dataset("demo", out, size="tiny", progress=False)
    assert not partial.exists()
    assert (report.out / "manifest.parquet").read_bytes() == (
        tiny_demo.out / "manifest.parquet"
    ).read_bytes()


def test_unknown_class_fails_cleanly(recipe_file, tmp_path: Path) -> None:
    recipe = load_recipe("demo")
    data = {
        "name": "broken",
        "classes": list(recipe.classes),
        "teacher": {"sources": ["synthetic-ms"], "size": 64},
        "student": {"sources": ["synthetic-rgb"], "size": 64},
        "class_map": {
            "synthetic-ms": {c: c for c in recipe.classes if c != "Forest"},
            "synthetic-rgb": "identity",
        },
        "splits": {"train": 0.6, "val": 0.2, "test": 0.2},
        "source_options": {"synthetic-ms": {"size": "tiny"}, "synthetic-rgb": {"size": "tiny"}},
    }
    out = tmp_path / "broken"
    with pytest.raises(UnknownClassError, match="class 'Forest' of source 'synthetic-ms'") as info:
        build_dataset(recipe_file(data), out, progress=False)
    assert "Forest" in str(info.value.path)
    assert not out.exists()
    assert list(tmp_path.glob(".broken*")) == []


def test_dropped_classes_are_counted(recipe_file, tmp_path: Path) -> None:
    recipe = load_recipe("demo")
    rgb_map = {c: c for c in recipe.classes} | {"SeaLake": None}
    data = {
        "name": "drop",
        "classes": list(recipe.classes),
        "teacher": {"sources": ["synthetic-ms"], "size": 32},
        "student": {"sources": ["synthetic-rgb"], "size": 32},
        "class_map": {"synthetic-ms": "identity", "synthetic-rgb": rgb_map},
        "splits": {"train": 0.6, "val": 0.2, "test": 0.2},
        "source_options": {"synthetic-ms": {"size": 4}, "synthetic-rgb": {"size": 5}},
    }
    report = build_dataset(recipe_file(data), tmp_path / "drop", progress=False)
    assert report.dropped_unmapped == {("synthetic-rgb", "SeaLake"): 5}
    info = json.loads((report.out / "dataset.json").read_text())
    assert info["extra"]["dropped_unmapped"] == {"synthetic-rgb/SeaLake": 5}
    assert "`synthetic-rgb` / `SeaLake`: 5" in (report.out / "README.md").read_text()
    manifest = pd.read_parquet(report.out / "manifest.parquet")
    assert not ((manifest["modality"] == "rgb") & (manifest["label_name"] == "SeaLake")).any()


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(FileProblemError, match="refusing to overwrite"):
        build_dataset("demo", out, size="tiny", progress=False)
    assert (out / "precious.txt").read_text() == "keep me"


def test_source_override_for_unused_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="eurosat-ms"):
        build_dataset("demo", tmp_path / "x", sources={"eurosat-ms": tmp_path}, progress=False)
