"""``RunRecorder``: the per-epoch metrics table and the last / best-on-validation checkpoints."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import lightning as L  # noqa: N812  (Lightning's convention)
import torch
from lightning.pytorch.callbacks import Callback
from torch.nn.modules.batchnorm import _BatchNorm

from msrgb_bench.atomic import write_text_atomic
from msrgb_bench.engine.checkpoint import save_checkpoint
from msrgb_bench.engine.runs import METRICS_CSV, METRICS_JSON, checkpoint_path

MONITOR = "val/acc"


class PreciseBatchNorm(Callback):
    """Recompute BatchNorm statistics over training batches before each validation (PreciseBN).

    Only the trained network's (``predictor()``) layers are refreshed, never a frozen teacher's.
    The module's :meth:`~msrgb_bench.engine.modules.TrainingModule.batch_norm_forward` runs
    each batch (normalised as for evaluation) with the statistics reset and averaged exactly
    (``momentum=None``), as :func:`torch.optim.swa_utils.update_bn` does. Under DDP the
    per-process means and second moments are then averaged over processes, so every rank (and
    the checkpoint rank 0 saves) holds the same statistics.

    Args:
        batches: Number of training batches to average over.
    """

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.batches = batches

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Refresh the statistics (during fitting only)."""
        if trainer.sanity_checking or trainer.state.fn != "fit" or not self.batches:
            return
        network = pl_module.predictor()  # type: ignore[operator]
        norms = [m for m in network.modules() if isinstance(m, _BatchNorm)]
        momenta = {m: m.momentum for m in norms}
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        was_training = pl_module.training
        pl_module.train()
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        with torch.no_grad():
            for index, batch in enumerate(trainer.train_dataloader):  # type: ignore[arg-type]
                if index >= self.batches:
                    break
                batch = pl_module.transfer_batch_to_device(batch, pl_module.device, 0)
                if datamodule is not None:
                    batch = datamodule.on_after_batch_transfer(batch, 0)
                pl_module.batch_norm_forward(batch)  # type: ignore[operator]
        if trainer.world_size > 1:  # average over processes: every rank validates the same net
            for m in norms:
                assert m.running_mean is not None and m.running_var is not None
                second_moment = m.running_var + m.running_mean**2
                mean = trainer.strategy.reduce(m.running_mean, reduce_op="mean")
                second_moment = trainer.strategy.reduce(second_moment, reduce_op="mean")
                m.running_mean.copy_(mean)
                m.running_var.copy_(second_moment - mean**2)
        for m, momentum in momenta.items():
            m.momentum = momentum
        pl_module.train(was_training)


MODES = ("max", "min")


class RunRecorder(Callback):
    """Write metrics and checkpoints into a run's staging folder after every epoch (rank 0).

    Each epoch appends one row (``epoch``, ``seconds``, every epoch-level ``train/*`` and
    ``val/*`` value) to ``metrics.csv`` and ``metrics.json``, writes ``last.safetensors`` and,
    when the monitored value (``val/acc`` by default) beats every earlier epoch,
    ``best.safetensors``. The module must offer ``checkpoint_state()``. Validation must run every
    epoch (it does by default).

    Args:
        folder: The run's staging folder.
        config_hash: Recorded in every checkpoint.
        monitor: The epoch-level metric that picks the best checkpoint.
        mode: ``"max"`` (higher is better) or ``"min"`` (lower is better, e.g. a loss).
    """

    def __init__(
        self, folder: Path, config_hash: str, monitor: str = MONITOR, mode: str = "max"
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.folder = Path(folder)
        self.config_hash = config_hash
        self.monitor = monitor
        self.mode = mode
        self.rows: list[dict[str, Any]] = []
        self.best: float | None = None
        self._epoch_start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the epoch clock."""
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record the epoch's metrics and save the checkpoints."""
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        if self.monitor not in metrics:
            raise RuntimeError(
                f"no {self.monitor!r} after epoch {trainer.current_epoch}: validation must run "
                "every epoch"
            )
        if not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch
        row = {"epoch": epoch, "seconds": time.perf_counter() - self._epoch_start}
        row.update(sorted(metrics.items()))
        self.rows.append(row)
        self._write_metrics()

        state = pl_module.checkpoint_state()  # type: ignore[operator]
        score = metrics[self.monitor]
        meta = {"config_hash": self.config_hash, "epoch": str(epoch), self.monitor: repr(score)}
        save_checkpoint(checkpoint_path(self.folder, "last"), state, meta)
        best = self.best
        if (
            best is None
            or not math.isfinite(best)  # a NaN at epoch 0 must not lock "best"
            or (math.isfinite(score) and self._beats(score, best))
        ):
            self.best = score
            save_checkpoint(checkpoint_path(self.folder, "best"), state, meta)

    def _beats(self, score: float, best: float) -> bool:
        return score > best if self.mode == "max" else score < best

    def _write_metrics(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns += [c for c in row if c not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.folder / METRICS_CSV, buffer.getvalue())
        write_text_atomic(self.folder / METRICS_JSON, json.dumps(self.rows, indent=1) + "\n")
