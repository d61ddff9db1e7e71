from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from datafolders import MS_BANDS, Folder, handmade_chips, train_norm
from torch import nn
from torchgeo.datamodules import NonGeoDataModule

import msrgb_bench
from msrgb_bench.data.datamodule import MSRGBDataModule, norm_stats, normalizer
from msrgb_bench.data.paired import PairedMSRGBDataset


def numpy_norm(folder: Folder, modality: str, bands: tuple[str, ...] | None = None) -> tuple:
    stats = train_norm(folder.chips, modality)
    picks = [MS_BANDS.index(b) for b in bands] if bands else range(len(stats["mean"]))
    return [stats["mean"][i] for i in picks], [stats["std"][i] for i in picks]


def test_norm_stats_come_from_dataset_json(folder: Folder) -> None:
    assert norm_stats(folder.root, "ms") == tuple(folder.info.norm["ms"].values())
    mean, std = norm_stats(folder.root, "ms", ("B08", "B02"))
    assert (mean, std) == numpy_norm(folder, "ms", ("B08", "B02"))
    batch = torch.rand(2, 2, 8, 8) * 10000
    expected = (batch - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    torch.testing.assert_close(normalizer(folder.root, "ms", ("B08", "B02"))(batch), expected)


def test_missing_norm_is_computed_on_train_and_not_saved(
    make_folder, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    folder = make_folder(handmade_chips(), with_norm=False)
    before = (folder.root / "dataset.json").read_bytes()
    with caplog.at_level(logging.WARNING):
        mean, std = norm_stats(folder.root, "rgb")
    assert "no norm stats for rgb; computing them on the train split" in caplog.text
    expected_mean, expected_std = numpy_norm(folder, "rgb")
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(std, expected_std, rtol=1e-9)
    assert (folder.root / "dataset.json").read_bytes() == before


def normalized(images: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    return (images - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def same_pixels_per_channel(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Flips and rot90 only move pixels: each (sample, channel) keeps its multiset of values."""
    return torch.allclose(
        a.flatten(2).sort(dim=2).values, b.flatten(2).sort(dim=2).values, atol=1e-5
    )


def test_ms_mode_batches_and_augmentation(folder: Folder) -> None:
    assert msrgb_bench.MSRGBDataModule is MSRGBDataModule
    dm = MSRGBDataModule(folder.root, "ms", bands=("B04", "B03", "B02"), batch_size=3)
    assert isinstance(dm, NonGeoDataModule)
    assert dm.num_classes == 3 and dm.in_channels == 3
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (3, 3, 8, 8) and batch["label"].shape == (3,)
    mean, std = numpy_norm(folder, "ms", ("B04", "B03", "B02"))
    expected = normalized(batch["image"], mean, std)
    evaluated = dm.aug(dict(batch))
    torch.testing.assert_close(evaluated["image"], expected)
    assert evaluated["sample_id"] == batch["sample_id"]
    torch.manual_seed(0)
    trained = [dm.train_aug(dict(batch))["image"] for _ in range(8)]
    assert all(same_pixels_per_channel(t, expected) for t in trained)
    assert any(not torch.allclose(t, expected) for t in trained)  # something was flipped
    val = next(iter(dm.val_dataloader()))
    assert val["sample_id"][0].startswith("ms-val-")
    dm.setup("predict")
    predict = [s for b in dm.predict_dataloader() for s in b["sample_id"]]
    assert predict == [c.sample_id for c in folder.chips_of("ms", "test")]


def test_rgb_mode_test_split(folder: Folder) -> None:
    dm = MSRGBDataModule(folder.root, "rgb", batch_size=2)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    mean, std = numpy_norm(folder, "rgb")
    torch.testing.assert_close(
        dm.normalize_batch(batch)["image"], normalized(batch["image"], mean, std)
    )


def test_paired_mode_normalises_each_modality_with_its_own_stats(folder: Folder) -> None:
    dm = MSRGBDataModule(folder.root, "paired", bands=("B08", "B04"), batch_size=4, seed=5)
    assert isinstance(dm.paired_dataset, PairedMSRGBDataset)
    assert dm.paired_dataset.pairs == dm.paired_dataset.default_pairs(5)
    assert dm.in_channels == 3 and dm.teacher_bands == ("B08", "B04")
    dm.setup("fit")
    assert dm.train_dataset is dm.paired_dataset
    batch = next(iter(dm.train_dataloader()))
    out = dm.train_aug(dict(batch))
    rgb = normalized(batch["image"], *numpy_norm(folder, "rgb"))
    ms = normalized(batch["teacher_image"], *numpy_norm(folder, "ms", ("B08", "B04")))
    assert same_pixels_per_channel(out["image"], rgb)
    assert same_pixels_per_channel(out["teacher_image"], ms)
    assert torch.equal(out["teacher_labels"], batch["teacher_labels"])
    assert out["teacher_sample_id"] == batch["teacher_sample_id"]
    val = next(iter(dm.val_dataloader()))
    assert val["image"].shape[1] == 3 and val["sample_id"][0].startswith("rgb-val-")
    with pytest.raises(ValueError, match="needs mode 'paired'"):
        _ = MSRGBDataModule(folder.root, "rgb").paired_dataset


class Recorder(pl.LightningModule):
    """Records what the trainer's batches look like after the data module's transfer hook."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.seen: list[dict[str, Any]] = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self.seen.append(
            {
                "epoch": self.current_epoch,
                "teachers": list(batch["teacher_sample_id"]),
                "image_mean": batch["image"].mean(dim=(0, 2, 3)),
            }
        )
        return self.layer(batch["image"].mean().reshape(1, 1)).sum()

    def on_train_epoch_end(self) -> None:
        # What SemBridge's re-matching does between epochs.
        paired = self.trainer.datamodule.paired_dataset  # type: ignore[attr-defined]
        paired.set_pairs(paired.default_pairs(seed=100 + self.current_epoch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_lightning_paired_training_sees_new_pairs_each_epoch(folder: Folder) -> None:
    dm = MSRGBDataModule(folder.root, "paired", batch_size=9, augment=False)
    model = Recorder()
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert [s["epoch"] for s in model.seen] == [0, 1]
    paired = dm.paired_dataset
    ids = list(paired.student_ids)
    order0 = dict(zip(ids, paired.default_pairs(0), strict=True))
    order1 = dict(zip(ids, paired.default_pairs(100), strict=True))
    assert sorted(model.seen[0]["teachers"]) == sorted(order0.values())
    assert sorted(model.seen[1]["teachers"]) == sorted(order1.values())
    # on_after_batch_transfer normalised the student images with the RGB train stats.
    rgb = np.stack([c.pixels for c in folder.chips_of("rgb", "train")]).astype(np.float64)
    mean, std = numpy_norm(folder, "rgb")
    expected = ((rgb - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]).mean(
        axis=(0, 2, 3)
    )
    np.testing.assert_allclose(model.seen[0]["image_mean"].numpy(), expected, atol=1e-5)
