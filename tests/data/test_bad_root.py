"""A bad root gets a clear error naming the file, never a silent empty dataset."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from datafolders import Folder, handmade_chips
from torchgeo.datasets import DatasetNotFoundError

from msrgb_bench.data.dataset import MSRGBDataset
from msrgb_bench.data.manifest import read_manifest, write_manifest
from msrgb_bench.errors import CorruptRasterError, ManifestError, UnknownNameError


def test_missing_root_is_torchgeo_not_found(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        MSRGBDataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError):
        MSRGBDataset(tmp_path / "empty")


def test_root_inside_a_dataset(folder: Folder) -> None:
    with pytest.raises(
        ManifestError, match=re.escape(f"pass the dataset folder itself ({folder.root})")
    ):
        MSRGBDataset(folder.root / "ms")


@pytest.mark.parametrize("missing", ["dataset.json", "manifest.parquet"])
def test_half_a_contract(folder: Folder, missing: str) -> None:
    (folder.root / missing).unlink()
    with pytest.raises(ManifestError, match=re.escape(str(folder.root / missing))):
        MSRGBDataset(folder.root)


def test_unreadable_manifest(folder: Folder) -> None:
    (folder.root / "manifest.parquet").write_bytes(b"not parquet")
    with pytest.raises(ManifestError, match="unreadable Parquet"):
        MSRGBDataset(folder.root)


def test_manifest_edited_after_build(folder: Folder) -> None:
    manifest = read_manifest(folder.root)
    write_manifest(manifest.iloc[1:], folder.root)  # a sample dropped by hand
    with pytest.raises(ManifestError, match=r"dataset\.json: content hash .* disagrees"):
        MSRGBDataset(folder.root)


def test_listed_file_missing(folder: Folder) -> None:
    victim = folder.root / "ms/val/River/ms-val-river-0.tif"
    victim.unlink()
    with pytest.raises(ManifestError, match=re.escape(f"{victim}: listed in manifest.parquet")):
        MSRGBDataset(folder.root, "val", "ms")
    MSRGBDataset(folder.root, "train", "ms")  # other splits are still usable


def test_unknown_band(folder: Folder) -> None:
    with pytest.raises(UnknownNameError, match="unknown ms band 'B99'; known: B02, B03, B04, B08"):
        MSRGBDataset(folder.root, bands=("B04", "B99"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "validation"}, "unknown split 'validation'"),
        ({"modality": "sar"}, "unknown modality 'sar'"),
        ({"bands": ()}, "at least one band"),
    ],
)
def test_bad_arguments(folder: Folder, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MSRGBDataset(folder.root, **kwargs)  # type: ignore[arg-type]


def test_empty_split_is_an_error(make_folder) -> None:  # type: ignore[no-untyped-def]
    chips = [c for c in handmade_chips() if not (c.modality == "ms" and c.split == "val")]
    folder = make_folder(chips)
    with pytest.raises(ManifestError, match=r"no ms samples in split 'val' .*: test, train"):
        MSRGBDataset(folder.root, "val", "ms")


def test_manifest_size_disagrees_with_dataset_json(make_folder) -> None:  # type: ignore[no-untyped-def]
    folder = make_folder(handmade_chips(), ms_size=16)  # files are 8x8
    with pytest.raises(ManifestError, match=r"listed as 4x8x8, dataset\.json promises 4x16x16"):
        MSRGBDataset(folder.root)


def test_label_out_of_range(make_folder) -> None:  # type: ignore[no-untyped-def]
    chips = handmade_chips()
    chips[0].label = 7
    folder = make_folder(chips, classes=("Forest", "River", "SeaLake", "X", "Y", "Z", "W", "V"))
    # dataset.json lists 3 classes (the content hash covers the manifest only, so it still matches)
    info = json.loads((folder.root / "dataset.json").read_text())
    info["classes"] = ["Forest", "River", "SeaLake"]
    (folder.root / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ManifestError, match=r"has label 7, outside 0\.\.2"):
        MSRGBDataset(folder.root, "train", "ms")


def test_file_with_wrong_shape_fails_on_read(folder: Folder, tmp_path: Path) -> None:
    # Same name, other content (a 3-band file): the cheap open check cannot see it, the read must.
    from datafolders import encode_tif

    path = folder.root / "ms/train/Forest/ms-train-forest-0.tif"
    path.write_bytes(encode_tif(np.zeros((3, 8, 8), dtype=np.uint16)))
    ds = MSRGBDataset(folder.root, "train", "ms")
    with pytest.raises(CorruptRasterError, match=r"ms-train-forest-0\.tif: has shape \(3, 8, 8\)"):
        ds[0]


def test_truncated_file_fails_on_read(folder: Folder) -> None:
    path = folder.root / "rgb/test/SeaLake/rgb-test-sealake-0.png"
    path.write_bytes(path.read_bytes()[:30])
    ds = MSRGBDataset(folder.root, "test", "rgb")
    with pytest.raises(CorruptRasterError, match=r"rgb-test-sealake-0\.png: unreadable image"):
        ds[len(ds) - 1]
