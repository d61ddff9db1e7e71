from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from datafolders import Folder, handmade_chips, write_folder

from msrgb_bench.cli import main
from msrgb_bench.data.dataset import MSRGBDataset
from msrgb_bench.data.manifest import file_sha256
from msrgb_bench.data.packed import PACKED_DIR, pack_dataset, verify_packed
from msrgb_bench.errors import CorruptRasterError, ManifestError


def test_pack_writes_one_array_per_modality_and_split(folder: Folder) -> None:
    written = pack_dataset(folder.root)
    assert sorted(p.name for p in written) == sorted(
        f"{m}-{s}.npy" for m in ("ms", "rgb") for s in ("train", "val", "test")
    )
    for modality, dtype in (("ms", np.uint16), ("rgb", np.uint8)):
        for split in ("train", "val", "test"):
            chips = folder.chips_of(modality, split)
            array = np.load(folder.root / PACKED_DIR / f"{modality}-{split}.npy", mmap_mode="r")
            assert array.dtype == dtype
            np.testing.assert_array_equal(array, np.stack([c.pixels for c in chips]))
            index = json.loads((folder.root / PACKED_DIR / f"{modality}-{split}.json").read_text())
            assert index["sample_ids"] == [c.sample_id for c in chips]
            assert index["shape"] == list(array.shape)
            assert index["content_hash"] == folder.info.content_hash
            assert index["sha256"] == file_sha256(
                folder.root / PACKED_DIR / f"{modality}-{split}.npy"
            )
    assert len(verify_packed(folder.root)) == 6
    assert not [p for p in folder.root.iterdir() if p.name.startswith(".")]  # no staging left


def test_failed_pack_keeps_the_old_packed_folder(folder: Folder) -> None:
    pack_dataset(folder.root)
    before = {p.name: p.read_bytes() for p in (folder.root / PACKED_DIR).iterdir()}
    victim = folder.root / "rgb/test/River/rgb-test-river-0.png"  # packed late (rgb/test)
    victim.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ManifestError, match=re.escape(f"{victim}: sha256")):
        pack_dataset(folder.root)
    after = {p.name: p.read_bytes() for p in (folder.root / PACKED_DIR).iterdir()}
    assert after == before
    assert not [p for p in folder.root.iterdir() if p.name.startswith(".")]


def test_pack_refuses_a_file_of_the_wrong_shape(tmp_path: Path) -> None:
    chips = handmade_chips()
    chips[0].pixels = chips[0].pixels[:, :4, :4]  # 4x4 listed as such, dataset.json says 8x8
    folder = write_folder(tmp_path / "odd", chips, with_norm=False)
    with pytest.raises(CorruptRasterError, match=r"has shape \(4, 4, 4\)"):
        pack_dataset(folder.root)
    assert not (folder.root / PACKED_DIR).exists()


def test_stale_or_damaged_packed_arrays_are_refused(folder: Folder, tmp_path: Path) -> None:
    pack_dataset(folder.root)
    # Rebuild the folder with other pixels: the packed folder now belongs to another build.
    other = write_folder(folder.root, handmade_chips(seed=1))
    assert other.info.content_hash != folder.info.content_hash
    with pytest.raises(ManifestError, match=r"ms-train\.json: packed from another build"):
        MSRGBDataset(folder.root, "train", "ms")
    MSRGBDataset(folder.root, "train", "ms", packed=False)  # the files are still fine
    pack_dataset(folder.root)
    npy = folder.root / PACKED_DIR / "ms-val.npy"
    npy.write_bytes(npy.read_bytes()[:-10])  # truncated
    with pytest.raises(ManifestError, match=r"ms-val\.npy: unreadable \.npy file"):
        MSRGBDataset(folder.root, "val", "ms")
    np.save(npy, np.zeros((3, 4, 8, 8), dtype=np.float32))  # replaced
    with pytest.raises(ManifestError, match=r"ms-val\.npy: holds float32\(3, 4, 8, 8\), its index"):
        MSRGBDataset(folder.root, "val", "ms")
    pack_dataset(folder.root)
    array = np.load(npy, mmap_mode="r+")
    array[0, 0, 0, 0] += 1  # same size, other content
    array.flush()
    del array
    MSRGBDataset(folder.root, "val", "ms")  # cheap checks cannot see it
    with pytest.raises(ManifestError, match=r"ms-val\.npy: sha256 .* differs from its index"):
        MSRGBDataset(folder.root, "val", "ms", checksum=True)
    (folder.root / PACKED_DIR / "ms-val.json").unlink()
    with pytest.raises(ManifestError, match="packed array without its index"):
        verify_packed(folder.root)
    with pytest.raises(ManifestError, match="has no packed ms/val array"):
        MSRGBDataset(folder.root, "val", "ms", packed=True)


def test_cli_pack(folder: Folder) -> None:
    result = CliRunner().invoke(main, ["pack", str(folder.root), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"wrote {folder.root / PACKED_DIR / 'ms-train.npy'}" in result.output
    assert MSRGBDataset(folder.root, "test", "rgb").is_packed
    (folder.root / "dataset.json").unlink()
    result = CliRunner().invoke(main, ["pack", str(folder.root)])
    assert result.exit_code == 1
    assert "dataset.json: no dataset.json here" in result.output
