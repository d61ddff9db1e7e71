"""The Lightning modules: a classifier (teacher training) and a distillation module (students).

Both read batches as dicts, exactly as the msrgb data modules yield them:

* teacher training: ``image`` (MS), ``label`` and, for multi-label data, ``labels`` (multi-hot);
* distillation: ``image`` (RGB), ``label``, ``teacher_image`` (MS) and the other keys of
  :class:`msrgb_bench.data.paired.PairedMSRGBDataset`;
* validation: ``image`` and ``label`` (and ``labels`` for a multi-label teacher).

Validation logs ``val/acc`` (accuracy; for multi-label, exact-match accuracy of the sigmoid
scores thresholded at 0.5, never an argmax) and ``val/loss``.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Mapping
from typing import Any

import lightning as L  # noqa: N812  (Lightning's convention)
import torch
import torch.nn.functional as F  # noqa: N812  (the PyTorch convention)
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MultilabelExactMatch

from msrgb_bench.baselines import Distiller, TrainingContext
from msrgb_bench.engine.checkpoint import EXTRA_PREFIX, MODEL_PREFIX
from msrgb_bench.models import Backbone

MULTILABEL_THRESHOLD = 0.5


def classification_loss(logits: Tensor, batch: Mapping[str, Any], multilabel: bool) -> Tensor:
    """Cross-entropy on ``label``, or BCE-with-logits on the multi-hot ``labels``."""
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits.float(), batch["labels"].float())
    return F.cross_entropy(logits.float(), batch["label"].long())


class ValidationMetrics(nn.Module):
    """Validation loss and accuracy of one classifier, synchronised across DDP processes.

    Args:
        num_classes: Number of classes.
        multilabel: Score multi-hot targets by exact match of ``sigmoid >= threshold``.
    """

    def __init__(self, num_classes: int, multilabel: bool) -> None:
        super().__init__()
        self.multilabel = multilabel
        self.acc: MultilabelExactMatch | MulticlassAccuracy
        if multilabel:
            self.acc = MultilabelExactMatch(num_labels=num_classes, threshold=MULTILABEL_THRESHOLD)
        else:
            self.acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.loss = MeanMetric()

    def update(self, logits: Tensor, batch: Mapping[str, Any]) -> None:
        """Accumulate one validation batch."""
        loss = classification_loss(logits, batch, self.multilabel)
        self.loss.update(loss, weight=len(logits))
        if self.multilabel:
            self.acc.update(torch.sigmoid(logits.float()), batch["labels"].int())
        else:
            self.acc.update(logits.argmax(dim=1), batch["label"].long())


class TrainingModule(L.LightningModule, abc.ABC):
    """Base of both modules: Adam without a schedule, logging, and what a checkpoint holds.

    Args:
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
    """

    def __init__(self, lr: float, weight_decay: float) -> None:
        super().__init__()
        self.lr = lr
        self.weight_decay = weight_decay

    @abc.abstractmethod
    def trainable(self) -> list[nn.Parameter]:
        """Return the parameters the optimiser updates."""

    @abc.abstractmethod
    def predictor(self) -> nn.Module:
        """Return the network validated and saved under ``model.``."""

    def batch_norm_forward(self, batch: dict[str, Any]) -> None:
        """Run the trained network on a batch, to gather BatchNorm statistics (PreciseBN)."""
        self.predictor()(batch["image"])

    def checkpoint_state(self) -> dict[str, Tensor]:
        """Return the tensors a checkpoint stores (``model.*`` and ``extra.*``)."""
        return {f"{MODEL_PREFIX}{k}": v for k, v in self.predictor().state_dict().items()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam without a schedule (the paper's protocol)."""
        return torch.optim.Adam(self.trainable(), lr=self.lr, weight_decay=self.weight_decay)

    def _log_validation(self, metrics: ValidationMetrics, logits: Tensor, batch: Any) -> None:
        metrics.update(logits, batch)
        self.log("val/acc", metrics.acc, on_step=False, on_epoch=True)
        self.log("val/loss", metrics.loss, on_step=False, on_epoch=True)

    def _log_train(self, name: str, value: Tensor, batch_size: int) -> None:
        self.log(
            f"train/{name}",
            value.detach(),
            on_step=False,
            on_epoch=True,
            sync_dist=True,
            batch_size=batch_size,
        )


class ClassifierModule(TrainingModule):
    """Trains one backbone on labels (the MS teacher): cross-entropy, or BCE for multi-label.

    Args:
        model: The backbone.
        multilabel: Train with BCE on ``labels`` and validate by exact match.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
    """

    def __init__(
        self, model: Backbone, *, multilabel: bool, lr: float, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay)
        self.model = model
        self.multilabel = multilabel
        self.val_metrics = ValidationMetrics(model.num_classes, multilabel)

    def trainable(self) -> list[nn.Parameter]:
        """Return the backbone's parameters."""
        return list(self.model.parameters())

    def predictor(self) -> nn.Module:
        """Return the backbone."""
        return self.model

    def forward(self, x: Tensor) -> Tensor:
        """Return logits."""
        return self.model(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Return the classification loss of a batch."""
        loss = classification_loss(self.model(batch["image"]), batch, self.multilabel)
        self._log_train("loss", loss, len(batch["image"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Accumulate validation loss and accuracy."""
        self._log_validation(self.val_metrics, self.model(batch["image"]), batch)


class DistillationModule(TrainingModule):
    """Trains a :class:`Distiller`'s student (and extra modules) on paired batches.

    The loss is the sum of the distiller's named terms; each term is logged as ``train/<name>``
    and their sum as ``train/loss``. The distiller's hooks run at fit start and before every
    training epoch, with a :class:`TrainingContext`.

    Args:
        distiller: The method, holding the student and the frozen teacher.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
    """

    def __init__(self, distiller: Distiller, *, lr: float, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.distiller = distiller
        self.val_metrics = ValidationMetrics(distiller.student.num_classes, multilabel=False)

    def trainable(self) -> list[nn.Parameter]:
        """Return the student's and the extra modules' parameters (never the teacher's)."""
        return list(self.distiller.trainable_parameters())

    def predictor(self) -> nn.Module:
        """Return the student."""
        return self.distiller.student

    def checkpoint_state(self) -> dict[str, Tensor]:
        """Return the student under ``model.`` and the extra modules under ``extra.``."""
        state = super().checkpoint_state()
        for name, value in self.distiller.trainable_state_dict().items():
            if not name.startswith("student."):
                state[f"{EXTRA_PREFIX}{name}"] = value
        return state

    def forward(self, x: Tensor) -> Tensor:
        """Return the student's logits."""
        return self.distiller(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Return the sum of the distiller's loss terms."""
        terms = self.distiller.forward_train(batch)
        loss = torch.stack(list(terms.values())).sum()
        size = len(batch["image"])
        for name, value in terms.items():
            self._log_train(name, value, size)
        self._log_train("loss", loss, size)
        for name, value in self.distiller.metrics().items():
            self._log_train(name, value, size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Accumulate the student's validation loss and accuracy."""
        self._log_validation(self.val_metrics, self.distiller(batch["image"]), batch)

    def _context(self, epoch: int) -> TrainingContext:
        trainer = self.trainer
        datamodule = getattr(trainer, "datamodule", None)
        dataset = getattr(datamodule, "train_dataset", None)
        if dataset is None and trainer.train_dataloader is not None:
            dataset = getattr(trainer.train_dataloader, "dataset", None)
        return TrainingContext(
            epoch=epoch,
            max_epochs=int(trainer.max_epochs or 0),
            device=self.device,
            train_dataset=dataset,
            datamodule=datamodule,
            world_size=trainer.world_size,
            global_rank=trainer.global_rank,
            broadcast=functools.partial(trainer.strategy.broadcast, src=0),
        )

    def on_fit_start(self) -> None:
        """Run the distiller's ``on_fit_start`` hook."""
        self.distiller.on_fit_start(self._context(0))

    def on_train_epoch_start(self) -> None:
        """Run the distiller's ``on_train_epoch_start`` hook."""
        self.distiller.on_train_epoch_start(self._context(self.current_epoch))
