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
from lightning.pytorch.callbacks import Callback

from msrgb_bench.atomic import write_text_atomic
from msrgb_bench.engine.checkpoint import save_checkpoint
from msrgb_bench.engine.runs import METRICS_CSV, METRICS_JSON, checkpoint_path

MONITOR = "val/acc"


class RunRecorder(Callback):
    """Write metrics and checkpoints into a run's staging folder after every epoch (rank 0).

    Each epoch appends one row (``epoch``, ``seconds``, every epoch-level ``train/*`` and
    ``val/*`` value) to ``metrics.csv`` and ``metrics.json``, writes ``last.safetensors`` and,
    when ``val/acc`` beats every earlier epoch, ``best.safetensors``. The module must offer
    ``checkpoint_state()``. Validation must run every epoch (it does by default).

    Args:
        folder: The run's staging folder.
        config_hash: Recorded in every checkpoint.
    """

    def __init__(self, folder: Path, config_hash: str) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.config_hash = config_hash
        self.rows: list[dict[str, Any]] = []
        self.best: float | None = None
        self._epoch_start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the epoch clock."""
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record the epoch's metrics and save the checkpoints."""
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        if MONITOR not in metrics:
            raise RuntimeError(
                f"no {MONITOR!r} after epoch {trainer.current_epoch}: validation must run every "
                "epoch"
            )
        if not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch
        row = {"epoch": epoch, "seconds": time.perf_counter() - self._epoch_start}
        row.update(sorted(metrics.items()))
        self.rows.append(row)
        self._write_metrics()

        state = pl_module.checkpoint_state()  # type: ignore[operator]
        score = metrics[MONITOR]
        meta = {"config_hash": self.config_hash, "epoch": str(epoch), MONITOR: repr(score)}
        save_checkpoint(checkpoint_path(self.folder, "last"), state, meta)
        if self.best is None or (math.isfinite(score) and score > self.best):
            self.best = score
            save_checkpoint(checkpoint_path(self.folder, "best"), state, meta)

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
