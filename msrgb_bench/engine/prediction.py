"""``predict``: a run's predictions on a dataset split, in the leaderboard's submission format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from msrgb_bench.data.datamodule import MSRGBDataModule
from msrgb_bench.data.manifest import read_info
from msrgb_bench.engine.modules import MULTILABEL_THRESHOLD
from msrgb_bench.engine.runs import TEACHER_KIND, load_run
from msrgb_bench.errors import RunFolderError
from msrgb_bench.leaderboard.submission import SubmissionMeta, write_submission

CHECKPOINT_RULES = {"best": "best-val", "last": "last"}


def _device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def predictions_frame(
    sample_ids: list[str], prob: np.ndarray, classes: list[str], multilabel: bool
) -> pd.DataFrame:
    """Return the submission columns for scores ``prob`` (samples x classes).

    Single-label: ``pred`` is the argmax of the softmax probabilities. Multi-label: one 0/1
    ``pred_<class>`` per class, ``prob >= 0.5`` (no argmax). Both add ``prob_<class>``.
    """
    columns: dict[str, object] = {"sample_id": sample_ids}
    if multilabel:
        for k, name in enumerate(classes):
            columns[f"pred_{name}"] = (prob[:, k] >= MULTILABEL_THRESHOLD).astype(np.int64)
    else:
        columns["pred"] = prob.argmax(axis=1).astype(np.int64)
    for k, name in enumerate(classes):
        columns[f"prob_{name}"] = prob[:, k]
    return pd.DataFrame(columns)


def predict(
    run: str | Path,
    data: str | Path,
    split: str,
    out: str | Path,
    *,
    checkpoint: str = "best",
    batch_size: int = 256,
    num_workers: int = 0,
    device: str | None = None,
) -> Path:
    """Predict a split with a run's checkpoint and write a submission (``out`` + sidecar).

    A student run predicts the RGB images; a teacher run predicts the MS chips (for a
    multi-label dataset: sigmoid scores and 0/1 decisions at 0.5, never an argmax). Inputs are
    normalised exactly as in training (the data module's evaluation transform).

    Args:
        run: The run folder.
        data: The dataset folder (or its public copy without test labels).
        split: ``"test"`` or ``"val"``.
        out: Predictions file (``.csv`` or ``.parquet``).
        checkpoint: ``"best"`` (on val) or ``"last"``.
        batch_size: Inference batch size.
        num_workers: DataLoader workers.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; the GPU when available by default.

    Returns:
        The predictions path.

    Raises:
        RunFolderError: If the run is unusable or was trained on another dataset.
        SubmissionError: If the predictions break the submission format.
    """
    data, out = Path(data), Path(out)
    if checkpoint not in CHECKPOINT_RULES:
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    loaded = load_run(run)
    info = read_info(data)
    if loaded.config["dataset"]["content_hash"] != info.content_hash:
        raise RunFolderError(
            loaded.path, f"was trained on another dataset than {data} (content hashes differ)"
        )
    is_teacher = loaded.kind == TEACHER_KIND
    modality = "ms" if is_teacher else "rgb"
    multilabel = is_teacher and info.multilabel
    target = _device(device)
    model = loaded.build_model(checkpoint).to(target)

    datamodule = MSRGBDataModule(
        data,
        modality=modality,
        bands=tuple(loaded.config["bands"]) if is_teacher else None,
        batch_size=batch_size,
        num_workers=num_workers,
        predict_split=split,
        augment=False,
    )
    datamodule.setup("predict")
    ids: list[str] = []
    scores: list[np.ndarray] = []
    with torch.inference_mode():
        for batch in datamodule.predict_dataloader():
            images = datamodule.normalize_batch({"image": batch["image"]})["image"]
            logits = model(images.to(target)).float()
            probs = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
            scores.append(probs.cpu().numpy().astype(np.float64))
            ids.extend(str(s) for s in batch["sample_id"])

    classes = loaded.classes
    prob = np.concatenate(scores) if scores else np.zeros((0, len(classes)))
    frame = predictions_frame(ids, prob, classes, multilabel)

    config = loaded.config
    meta = SubmissionMeta(
        dataset=info.recipe,
        dataset_hash=info.content_hash,
        split=split,
        method="teacher" if is_teacher else config["method"],
        teacher_arch=config["arch"] if is_teacher else config["teacher_arch"],
        student_arch=config["arch"],
        preset="n/a" if is_teacher else config["preset"],
        seed=int(config["trainer"]["seed"]),
        config_hash=loaded.config_hash,
        code_version=str(loaded.info.get("code_version", "unknown")),
        checkpoint_rule=CHECKPOINT_RULES[checkpoint],
        param_count=sum(p.numel() for p in model.parameters()),
        train_seconds=float(loaded.info.get("train_seconds", 0.0)),
        modality=modality,
        threshold=MULTILABEL_THRESHOLD if multilabel else None,
    )
    return write_submission(out, frame, meta)
