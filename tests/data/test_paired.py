from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from datafolders import CLASSES, Folder, handmade_chips, hide_test_labels
from torch.utils.data import DataLoader

import msrgb_bench
from msrgb_bench.data.packed import pack_dataset
from msrgb_bench.data.paired import MS_RGB_BANDS, PairedMSRGBDataset
from msrgb_bench.errors import ManifestError


def class_of(sample_id: str) -> int:
    """Class index from the handmade ids (``<modality>-<split>-<class>-<k>``)."""
    return [c.lower() for c in CLASSES].index(sample_id.split("-")[2])


def test_contract_of_a_sample(folder: Folder) -> None:
    assert msrgb_bench.PairedMSRGBDataset is PairedMSRGBDataset
    assert MS_RGB_BANDS == ("B04", "B03", "B02")
    ds = PairedMSRGBDataset(folder.root, ms_bands=("B08", "B04"))
    students = folder.chips_of("rgb", "train")
    teachers = {c.sample_id: c for c in folder.chips_of("ms", "train")}
    assert len(ds) == len(students) == 9
    for i, chip in enumerate(students):
        sample = ds[i]
        assert sorted(sample) == sorted(
            [
                "image", "label", "sample_id", "index", "teacher_image", "teacher_label",
                "teacher_labels", "teacher_sample_id",
            ]
        )  # fmt: skip
        assert sample["index"] == i and sample["sample_id"] == chip.sample_id
        assert sample["image"].dtype == torch.float32 and sample["image"].shape == (3, 6, 6)
        np.testing.assert_array_equal(sample["image"].numpy(), chip.pixels)
        assert sample["label"].dtype == torch.int64 and int(sample["label"]) == chip.labels[0]
        partner = teachers[sample["teacher_sample_id"]]
        assert sample["teacher_sample_id"] == ds.pairs[i]
        assert sample["teacher_image"].dtype == torch.float32
        np.testing.assert_array_equal(sample["teacher_image"].numpy(), partner.pixels[[3, 2]])
        assert int(sample["teacher_label"]) == partner.labels[0] == chip.labels[0]
        expected = np.zeros(3, dtype=np.float32)
        expected[partner.labels] = 1
        assert sample["teacher_labels"].dtype == torch.float32
        np.testing.assert_array_equal(sample["teacher_labels"].numpy(), expected)


def test_accessors_for_batched_retrieval(folder: Folder) -> None:
    ds = PairedMSRGBDataset(folder.root)
    assert list(ds.student_ids) == [c.sample_id for c in folder.chips_of("rgb", "train")]
    assert list(ds.teacher_ids) == [c.sample_id for c in folder.chips_of("ms", "train")]
    assert ds.student_labels.tolist() == [class_of(s) for s in ds.student_ids]
    assert ds.teacher_labels_array.dtype == np.int64
    assert ds.teacher_labels_array.tolist() == [class_of(s) for s in ds.teacher_ids]
    assert ds.teacher_multi_hot.shape == (6, 3)
    # A matcher's same-class mask, batched: students x teachers.
    mask = ds.student_labels[:, None] == ds.teacher_labels_array[None, :]
    assert mask.sum(axis=1).tolist() == [2] * 9


def test_default_pairs_are_seeded_and_same_class(folder: Folder) -> None:
    ds = PairedMSRGBDataset(folder.root, seed=3)
    assert ds.pairs == ds.default_pairs(3) == PairedMSRGBDataset(folder.root, seed=3).pairs
    draws = {tuple(ds.default_pairs(seed)) for seed in range(8)}
    assert len(draws) > 1  # 2 candidates for each of 9 students: seeds differ
    for seed in range(8):
        pairs = ds.default_pairs(seed)
        assert [class_of(t) for t in pairs] == [class_of(s) for s in ds.student_ids]
        assert all(t.startswith("ms-train-") for t in pairs)


def test_set_pairs_replaces_and_validates(folder: Folder) -> None:
    ds = PairedMSRGBDataset(folder.root)
    new = [f"ms-train-{CLASSES[class_of(s)].lower()}-1" for s in ds.student_ids]
    ds.set_pairs(new)
    assert ds.pairs == new
    assert [ds[i]["teacher_sample_id"] for i in range(len(ds))] == new
    with pytest.raises(ValueError, match="got 8 pairs for 9 train student samples"):
        ds.set_pairs(new[:-1])
    with pytest.raises(ValueError, match="pair 0: unknown teacher sample_id 'nope'"):
        ds.set_pairs(["nope", *new[1:]])
    with pytest.raises(ValueError, match="'ms-val-forest-0' is a ms val sample; teacher partners"):
        ds.set_pairs(["ms-val-forest-0", *new[1:]])
    with pytest.raises(ValueError, match="is a rgb train sample"):
        ds.set_pairs(["rgb-train-forest-1", *new[1:]])
    with pytest.raises(
        ValueError, match=r"pair 0: student .* is 'Forest' but teacher .* is 'River'"
    ):
        ds.set_pairs(["ms-train-river-0", *new[1:]])
    assert ds.pairs == new  # a refused list changes nothing


def test_multilabel_teacher_of_a_secondary_class_is_accepted(multilabel_folder: Folder) -> None:
    ds = PairedMSRGBDataset(multilabel_folder.root)
    # ms-train-forest-1 is Forest (primary) + River: a valid partner of a River student.
    river = [i for i, s in enumerate(ds.student_ids) if class_of(s) == 1]
    pairs = ds.pairs
    pairs[river[0]] = "ms-train-forest-1"
    ds.set_pairs(pairs)
    sample = ds[river[0]]
    assert int(sample["teacher_label"]) == 0
    assert sample["teacher_labels"].tolist() == [1.0, 1.0, 0.0]


def test_hidden_labels_cannot_be_paired(make_folder) -> None:  # type: ignore[no-untyped-def]
    public = make_folder(hide_test_labels(handmade_chips()), name="public")
    with pytest.raises(ValueError, match="test split has hidden student labels"):
        PairedMSRGBDataset(public.root, split="test")


def test_class_without_teachers(make_folder) -> None:  # type: ignore[no-untyped-def]
    chips = [c for c in handmade_chips() if not (c.modality == "ms" and c.labels == [2])]
    folder = make_folder(chips)
    with pytest.raises(ValueError, match="class 'SeaLake' has 3 train RGB samples but no MS train"):
        PairedMSRGBDataset(folder.root)


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_save_and_load_pairs_round_trip(folder: Folder, tmp_path: Path, suffix: str) -> None:
    ds = PairedMSRGBDataset(folder.root, seed=1)
    path = ds.save_pairs(tmp_path / f"pairs{suffix}")
    saved = ds.pairs
    other = PairedMSRGBDataset(folder.root, seed=2)
    assert other.pairs != saved
    assert other.load_pairs(path) == saved and other.pairs == saved
    val = PairedMSRGBDataset(folder.root, split="val")
    with pytest.raises(ValueError, match="pairs are for split 'train', not 'val'"):
        val.load_pairs(path)


def test_load_pairs_refuses_other_datasets_and_bad_files(
    folder: Folder, multilabel_folder: Folder, tmp_path: Path
) -> None:
    path = PairedMSRGBDataset(multilabel_folder.root).save_pairs(tmp_path / "ml.json")
    with pytest.raises(ValueError, match="made for another dataset"):
        PairedMSRGBDataset(folder.root).load_pairs(path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ManifestError, match=r"bad\.json: malformed pair file"):
        PairedMSRGBDataset(folder.root).load_pairs(bad)
    with pytest.raises(ValueError, match=r"pair files are \.json or \.parquet"):
        PairedMSRGBDataset(folder.root).save_pairs(tmp_path / "pairs.csv")


def test_persistent_workers_see_new_pairs_next_epoch(folder: Folder) -> None:
    pack_dataset(folder.root)
    ds = PairedMSRGBDataset(folder.root, seed=0)
    loader = DataLoader(ds, batch_size=5, num_workers=1, persistent_workers=True)
    first = [t for batch in loader for t in batch["teacher_sample_id"]]
    assert first == ds.pairs
    flipped = [
        t.replace("-0", "-1") if t.endswith("-0") else t.replace("-1", "-0") for t in ds.pairs
    ]
    ds.set_pairs(flipped)
    second = [t for batch in loader for t in batch["teacher_sample_id"]]
    assert second == flipped != first
    images = torch.cat([batch["teacher_image"] for batch in loader])
    expected = {c.sample_id: c.pixels for c in folder.chips_of("ms", "train")}
    np.testing.assert_array_equal(images.numpy(), np.stack([expected[t] for t in flipped]))
