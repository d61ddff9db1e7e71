from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from datafolders import CLASSES, MS_BANDS, Folder, handmade_chips, hide_test_labels
from matplotlib.figure import Figure
from torch.utils.data import DataLoader, default_collate
from torchgeo.datasets import NonGeoDataset, RGBBandsMissingError

import msrgb_bench
from msrgb_bench.data.dataset import MSRGBDataset, collate_samples
from msrgb_bench.data.packed import pack_dataset
from msrgb_bench.errors import ManifestError


def test_is_a_torchgeo_dataset_exported_lazily(folder: Folder) -> None:
    assert msrgb_bench.MSRGBDataset is MSRGBDataset
    assert issubclass(MSRGBDataset, NonGeoDataset)


@pytest.mark.parametrize("modality", ["ms", "rgb"])
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_samples_hold_the_file_pixels(folder: Folder, modality: str, split: str) -> None:
    ds = MSRGBDataset(folder.root, split, modality)
    expected = folder.chips_of(modality, split)
    assert len(ds) == len(expected)
    for i, chip in enumerate(expected):
        sample = ds[i]
        assert sample["sample_id"] == chip.sample_id
        assert sample["image"].dtype == torch.float32
        np.testing.assert_array_equal(sample["image"].numpy(), chip.pixels.astype(np.float32))
        assert sample["label"].dtype == torch.int64
        assert int(sample["label"]) == chip.labels[0]
        assert "labels" not in sample  # single-label dataset


def test_band_selection_reorders_channels(folder: Folder) -> None:
    ds = MSRGBDataset(folder.root, "train", "ms", bands=("B04", "B03", "B02"))
    chip = folder.chips_of("ms", "train")[0]
    picks = [MS_BANDS.index(b) for b in ("B04", "B03", "B02")]
    np.testing.assert_array_equal(ds[0]["image"].numpy(), chip.pixels[picks].astype(np.float32))


def test_multilabel_teacher_gets_multi_hot(multilabel_folder: Folder) -> None:
    ds = MSRGBDataset(multilabel_folder.root, "train", "ms")
    for i, chip in enumerate(multilabel_folder.chips_of("ms", "train")):
        sample = ds[i]
        expected = np.zeros(len(CLASSES), dtype=np.float32)
        expected[chip.labels] = 1
        np.testing.assert_array_equal(sample["labels"].numpy(), expected)
        assert int(sample["label"]) == chip.labels[0]
    batch = collate_samples(ds.__getitems__(list(range(len(ds)))))
    assert torch.equal(batch["labels"], torch.stack([ds[i]["labels"] for i in range(len(ds))]))
    assert "labels" not in MSRGBDataset(multilabel_folder.root, "train", "rgb")[0]


def test_hidden_test_labels_read_as_minus_one(make_folder) -> None:  # type: ignore[no-untyped-def]
    public = make_folder(hide_test_labels(handmade_chips()), name="public")
    ds = MSRGBDataset(public.root, "test", "rgb")
    assert [int(ds[i]["label"]) for i in range(len(ds))] == [-1] * len(ds)


def test_packed_and_per_file_paths_agree(folder: Folder) -> None:
    per_file = {m: MSRGBDataset(folder.root, "train", m) for m in ("ms", "rgb")}
    pack_dataset(folder.root)
    for modality in ("ms", "rgb"):
        packed = MSRGBDataset(folder.root, "train", modality, checksum=True)
        assert packed.is_packed and not per_file[modality].is_packed
        for i in range(len(packed)):
            a, b = packed[i], per_file[modality][i]
            assert a["sample_id"] == b["sample_id"]
            assert torch.equal(a["image"], b["image"])
    bands = MSRGBDataset(folder.root, "val", "ms", bands=("B08", "B02"))
    chip = folder.chips_of("ms", "val")[0]
    np.testing.assert_array_equal(bands[0]["image"].numpy(), chip.pixels[[3, 0]].astype(np.float32))
    forced = MSRGBDataset(folder.root, "val", "ms", packed=False)
    assert not forced.is_packed


def test_packed_dataset_in_worker_processes(folder: Folder) -> None:
    pack_dataset(folder.root)
    ds = MSRGBDataset(folder.root, "train", "rgb")
    loader = DataLoader(ds, batch_size=4, num_workers=2)
    ids, images = [], []
    for batch in loader:
        ids += batch["sample_id"]
        images.append(batch["image"])
    assert ids == [c.sample_id for c in folder.chips_of("rgb", "train")]
    expected = np.stack([c.pixels for c in folder.chips_of("rgb", "train")]).astype(np.float32)
    np.testing.assert_array_equal(torch.cat(images).numpy(), expected)


def test_transforms_receive_the_sample(folder: Folder) -> None:
    def double(sample: dict) -> dict:  # type: ignore[type-arg]
        return {**sample, "image": sample["image"] * 2}

    plain = MSRGBDataset(folder.root, "val", "ms")
    doubled = MSRGBDataset(folder.root, "val", "ms", transforms=double)
    assert torch.equal(doubled[0]["image"], plain[0]["image"] * 2)


def test_checksum_refuses_an_altered_file(folder: Folder) -> None:
    MSRGBDataset(folder.root, "train", "rgb", checksum=True)
    path = folder.root / "rgb/train/River/rgb-train-river-1.png"
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    MSRGBDataset(folder.root, "train", "rgb")  # no checksum: not read yet, not checked
    with pytest.raises(ManifestError, match=r"rgb-train-river-1\.png: sha256 .* differs"):
        MSRGBDataset(folder.root, "train", "rgb", checksum=True)


def test_plot_ms_uses_b04_b03_b02(folder: Folder) -> None:
    ds = MSRGBDataset(folder.root, "train", "ms")
    sample = ds[0]
    sample["prediction"] = torch.tensor(2)
    fig = ds.plot(sample, suptitle="teacher")
    assert isinstance(fig, Figure)
    axis = fig.axes[0]
    assert axis.get_title() == "Label: Forest\nPrediction: SeaLake"
    assert fig.texts[0].get_text() == "teacher"
    shown = axis.get_images()[0].get_array()
    assert shown.shape == (8, 8, 3)
    # Red is B04, stretched between its 2nd and 98th percentiles.
    red = sample["image"][MS_BANDS.index("B04")].numpy().astype(np.float64)
    lo, hi = np.percentile(red, [2, 98])
    np.testing.assert_allclose(shown[..., 0], np.clip((red - lo) / (hi - lo), 0, 1))
    no_rgb = MSRGBDataset(folder.root, "train", "ms", bands=("B08",))
    with pytest.raises(RGBBandsMissingError):
        no_rgb.plot(no_rgb[0])


def test_plot_rgb_and_multilabel_titles(folder: Folder, multilabel_folder: Folder) -> None:
    rgb = MSRGBDataset(folder.root, "val", "rgb")
    fig = rgb.plot(rgb[1], show_titles=False)
    assert fig.axes[0].get_title() == ""
    np.testing.assert_allclose(
        fig.axes[0].get_images()[0].get_array(),
        folder.chips_of("rgb", "val")[1].pixels.transpose(1, 2, 0) / 255.0,
    )
    ml = MSRGBDataset(multilabel_folder.root, "train", "ms")
    index = next(i for i in range(len(ml)) if ml[i]["labels"].sum() == 2)
    title = ml.plot(ml[index]).axes[0].get_title()
    names = [CLASSES[i] for i in np.flatnonzero(ml[index]["labels"].numpy())]
    assert title == f"Label: {', '.join(names)}"


def test_real_eurosat_sample_loads(real_folder: Folder) -> None:
    ms = MSRGBDataset(real_folder.root, "train", "ms", checksum=True)
    assert len(ms) == 6 and ms[0]["image"].shape == (13, 64, 64)
    chip = real_folder.chips_of("ms", "train")[0]
    with rasterio.open(real_folder.root / ms.rows["path"][0]) as src:
        assert src.crs is not None and src.crs.to_epsg() // 100 == 326  # UTM north, as shipped
        np.testing.assert_array_equal(ms[0]["image"].numpy(), src.read().astype(np.float32))
    np.testing.assert_array_equal(ms[0]["image"].numpy(), chip.pixels.astype(np.float32))
    # Real Sentinel-2 reflectance (x 10000), not noise: neighbouring pixels correlate.
    b04 = ms[0]["image"][3].numpy()
    assert 0 < b04.mean() < 10000
    assert np.corrcoef(b04[:, :-1].ravel(), b04[:, 1:].ravel())[0, 1] > 0.5
    rgb = MSRGBDataset(real_folder.root, "val", "rgb")
    assert rgb[0]["image"].shape == (3, 64, 64)
    assert isinstance(ms.plot(ms[0]), Figure)
    pack_dataset(real_folder.root)
    packed = MSRGBDataset(real_folder.root, "train", "ms", checksum=True)
    assert packed.is_packed and torch.equal(packed[0]["image"], ms[0]["image"])


def test_batched_fetch_is_collated_without_a_copy(folder: Folder) -> None:
    ds = MSRGBDataset(folder.root, "train", "ms", bands=("B08", "B04"))
    indices = [4, 0, 5]
    batch = collate_samples(ds.__getitems__(indices))
    expected = default_collate([ds[i] for i in indices])
    assert batch.keys() == expected.keys()
    for key in ("image", "label"):
        assert torch.equal(batch[key], expected[key])
    assert batch["sample_id"] == expected["sample_id"]
    rows = ds.__getitems__(indices)
    assert collate_samples(rows)["image"].data_ptr() == rows[0]["image"].data_ptr()  # no copy
    # Samples read one by one are separate tensors: collated by stacking, same values.
    separate = collate_samples([ds[i] for i in indices])
    assert torch.equal(separate["image"], expected["image"])
    # Rows of one tensor but not consecutive: stacked, not reinterpreted.
    base = torch.arange(24.0).reshape(4, 6)
    stacked = collate_samples([{"x": base[0]}, {"x": base[2]}])["x"]
    assert torch.equal(stacked, base[[0, 2]])
