"""Tiny in-memory data for engine tests, batches shaped like the msrgb data modules' own.

Also imported by ``ddp_worker.py``, which runs outside pytest.
"""

from __future__ import annotations

from typing import Any

import lightning as L  # noqa: N812
import torch
from torch.utils.data import DataLoader, Dataset

NUM_CLASSES = 4
MS_CHANS = 5
SIZE = 32


class TinyPaired(Dataset[dict[str, Any]]):
    """RGB students with MS teacher partners from a bank; ``set_pairs`` swaps partners.

    Images carry a class-dependent offset so a few steps of training change predictions.
    """

    def __init__(self, n: int, seed: int = 0, multilabel: bool = False) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % NUM_CLASSES
        offset = self.labels.float().view(-1, 1, 1, 1)
        self.images = torch.randn(n, 3, SIZE, SIZE, generator=gen) + offset
        self.bank = torch.randn(2 * n, MS_CHANS, SIZE, SIZE, generator=gen)
        self.bank_labels = torch.arange(2 * n) % NUM_CLASSES
        self.multilabel = multilabel
        self.pairs = list(range(n))  # teacher i is of class i % NUM_CLASSES, like student i

    def set_pairs(self, pairs: list[int]) -> None:
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        t = self.pairs[i]
        multi = torch.zeros(NUM_CLASSES)
        multi[self.bank_labels[t]] = 1.0
        multi[(self.bank_labels[t] + 1) % NUM_CLASSES] = float(self.multilabel)
        return {
            "image": self.images[i],
            "label": self.labels[i],
            "sample_id": f"rgb-{i}",
            "index": i,
            "teacher_image": self.bank[t],
            "teacher_label": self.bank_labels[t],
            "teacher_labels": multi,
            "teacher_sample_id": f"ms-{t}",
        }


class TeacherView(Dataset[dict[str, Any]]):
    """The MS side of a :class:`TinyPaired` as a teacher-training dataset (``labels`` multi-hot)."""

    def __init__(self, paired: TinyPaired) -> None:
        self.paired = paired

    def __len__(self) -> int:
        return len(self.paired)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.paired[i]
        return {
            "image": item["teacher_image"] + item["teacher_label"].float(),
            "label": item["teacher_label"],
            "labels": item["teacher_labels"],
            "sample_id": item["teacher_sample_id"],
        }


class TinyDataModule(L.LightningDataModule):
    """Train on :class:`TinyPaired` (or its teacher view), validate on RGB or MS samples."""

    def __init__(
        self, n_train: int = 16, n_val: int = 8, batch_size: int = 4, teacher: bool = False,
        multilabel: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        paired = TinyPaired(n_train, seed=0, multilabel=multilabel)
        val = TinyPaired(n_val, seed=1, multilabel=multilabel)
        self.train_dataset: Dataset[dict[str, Any]] = TeacherView(paired) if teacher else paired
        self.val_dataset: Dataset[dict[str, Any]] = TeacherView(val) if teacher else val
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader[dict[str, Any]]:
        return DataLoader(self.train_dataset, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[dict[str, Any]]:
        return DataLoader(self.val_dataset, batch_size=self.batch_size)
