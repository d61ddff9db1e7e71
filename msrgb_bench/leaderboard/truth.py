"""The ground truth the evaluator scores against: a dataset folder or the private label file.

The private label file is one Parquet file with columns ``sample_id``, ``modality``, ``split``,
``label`` and ``labels`` (the manifest's meaning) for the hidden split(s), and the dataset's
identity (recipe, content hash, classes, multi-label flag) as JSON in the schema's key-value
metadata under ``msrgb.private_labels``. It is written by :mod:`msrgb_bench.leaderboard.release`
and kept by the leaderboard server; it is the only place the hidden labels exist.

Which targets are multi-label: the ``ms`` modality of a dataset whose ``dataset.json`` says
``multilabel`` (the paper's M2S setting: multi-label teacher data, single-label student data).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.preprocessing import MultiLabelBinarizer

from msrgb_bench.atomic import atomic_path
from msrgb_bench.data.manifest import content_hash, read_info, read_manifest
from msrgb_bench.errors import ManifestError
from msrgb_bench.leaderboard.errors import LabelFileError, LeaderboardError, SubmissionError

PRIVATE_FORMAT_VERSION = 1
PRIVATE_META_KEY = b"msrgb.private_labels"
PRIVATE_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("modality", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.int64(), nullable=False),
        pa.field("labels", pa.list_(pa.int64()), nullable=False),
    ]
)
HIDDEN_LABEL = -1


@dataclass(frozen=True)
class Target:
    """The labels of one split and modality, in ``sample_id`` order.

    Attributes:
        dataset: Recipe name.
        dataset_hash: The dataset's content hash.
        classes: Class names in index order.
        multilabel: Whether ``y`` is a samples x classes 0/1 matrix (else class indices).
        split: The split.
        modality: The modality.
        sample_ids: Sorted sample ids (object array of str).
        y: Class indices (n,) int64, or indicator matrix (n, classes) int8.
    """

    dataset: str
    dataset_hash: str
    classes: tuple[str, ...]
    multilabel: bool
    split: str
    modality: str
    sample_ids: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class GroundTruth:
    """Labels of a dataset's scorable samples plus the dataset's identity.

    Attributes:
        dataset: Recipe name.
        dataset_hash: The dataset's content hash (its identity for submissions).
        classes: Class names in index order.
        multilabel: ``dataset.json``'s multi-label flag.
        samples: Columns ``sample_id``, ``modality``, ``split``, ``label``, ``labels``; only
            rows whose labels are known.
        hidden_splits: Splits whose labels are hidden (a public copy), for error messages.
    """

    dataset: str
    dataset_hash: str
    classes: tuple[str, ...]
    multilabel: bool
    samples: pd.DataFrame
    hidden_splits: tuple[str, ...] = ()

    def available(self) -> list[tuple[str, str]]:
        """Return the (split, modality) pairs that can be scored, sorted."""
        pairs = self.samples[["split", "modality"]].drop_duplicates()
        return sorted(map(tuple, pairs.to_numpy().tolist()))

    def target(self, split: str, modality: str) -> Target:
        """Return the labels of one split and modality.

        Raises:
            SubmissionError: If that split and modality have no known labels here.
        """
        samples = self.samples
        rows = samples[(samples["split"] == split) & (samples["modality"] == modality)]
        if rows.empty and split in self.hidden_splits:
            raise SubmissionError(
                f"the {split} labels are hidden in this public copy of the dataset; score with "
                "the private label file or submit to the leaderboard server"
            )
        if rows.empty:
            offered = ", ".join(f"{s}/{m}" for s, m in self.available()) or "nothing"
            raise SubmissionError(
                f"split {split!r} of modality {modality!r} has no labels here; "
                f"this label set scores: {offered}"
            )
        rows = rows.sort_values("sample_id", kind="stable")
        multilabel = self.multilabel and modality == "ms"
        if multilabel:
            binarizer = MultiLabelBinarizer(classes=list(range(len(self.classes))))
            y = binarizer.fit_transform(rows["labels"].tolist()).astype(np.int8)
        else:
            y = rows["label"].to_numpy(dtype=np.int64)
        return Target(
            dataset=self.dataset,
            dataset_hash=self.dataset_hash,
            classes=self.classes,
            multilabel=multilabel,
            split=split,
            modality=modality,
            sample_ids=rows["sample_id"].to_numpy(dtype=object),
            y=y,
        )

    @classmethod
    def from_dataset(cls, root: str | Path, *, check_hash: bool = True) -> GroundTruth:
        """Read the labels of a built dataset folder.

        Splits whose labels are hidden (a public copy) are left out.

        Args:
            root: The dataset folder.
            check_hash: Recompute the manifest's content hash and compare it with
                ``dataset.json`` (skipped for a public copy, whose manifest is redacted).

        Raises:
            ManifestError: If the folder is not a dataset or its hash disagrees.
            LeaderboardError: If every split's labels are hidden.
        """
        root = Path(root)
        info = read_info(root)
        manifest = read_manifest(root)
        hidden = bool(info.extra.get("labels_hidden", False))
        if check_hash and not hidden:
            actual = content_hash(manifest)
            if actual != info.content_hash:
                raise ManifestError(
                    root / "dataset.json",
                    f"content_hash {info.content_hash} differs from the manifest's {actual}",
                )
        known = manifest[manifest["label"] != HIDDEN_LABEL]
        if known.empty:
            raise LeaderboardError(f"{root}: every label is hidden in this public copy")
        samples = known.loc[:, ["sample_id", "modality", "split", "label", "labels"]]
        hidden_splits = sorted(set(manifest.loc[manifest["label"] == HIDDEN_LABEL, "split"]))
        return cls(
            dataset=info.recipe,
            dataset_hash=info.content_hash,
            classes=tuple(info.classes),
            multilabel=info.multilabel,
            samples=samples.reset_index(drop=True),
            hidden_splits=tuple(hidden_splits),
        )


def write_private_labels(truth: GroundTruth, path: str | Path) -> Path:
    """Write ``truth`` as the private label file, atomically and readable by the owner only.

    Returns:
        The written path.
    """
    path = Path(path)
    header = {
        "format_version": PRIVATE_FORMAT_VERSION,
        "dataset": truth.dataset,
        "dataset_hash": truth.dataset_hash,
        "classes": list(truth.classes),
        "multilabel": truth.multilabel,
    }
    frame = truth.samples.loc[:, list(PRIVATE_SCHEMA.names)].sort_values("sample_id")
    table = pa.Table.from_pandas(frame, schema=PRIVATE_SCHEMA, preserve_index=False)
    table = table.replace_schema_metadata({PRIVATE_META_KEY: json.dumps(header, sort_keys=True)})
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o600)
        pq.write_table(table, tmp, compression="zstd")
    return path


def read_private_labels(path: str | Path) -> GroundTruth:
    """Read a private label file.

    Raises:
        LabelFileError: If it is missing, unreadable or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(path, "no such private label file")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise LabelFileError(path, f"not a readable Parquet file ({exc})") from exc
    raw = (table.schema.metadata or {}).get(PRIVATE_META_KEY)
    if raw is None:
        raise LabelFileError(path, "not a private label file (no msrgb.private_labels header)")
    try:
        header = json.loads(raw)
        if header["format_version"] != PRIVATE_FORMAT_VERSION:
            raise LabelFileError(path, f"unknown format_version {header['format_version']!r}")
        classes: Sequence[str] = header["classes"]
        dataset, dataset_hash = str(header["dataset"]), str(header["dataset_hash"])
        multilabel = bool(header["multilabel"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise LabelFileError(path, f"malformed header ({exc!r})") from exc
    missing = [n for n in PRIVATE_SCHEMA.names if n not in table.column_names]
    if missing:
        raise LabelFileError(path, f"missing column(s) {', '.join(missing)}")
    samples = table.select(list(PRIVATE_SCHEMA.names)).to_pandas()
    if samples["sample_id"].duplicated().any():
        raise LabelFileError(path, "duplicated sample_id")
    if (samples["label"] < 0).any() or (samples["label"] >= len(classes)).any():
        raise LabelFileError(path, "label out of range of the class list")
    return GroundTruth(
        dataset=dataset,
        dataset_hash=dataset_hash,
        classes=tuple(classes),
        multilabel=multilabel,
        samples=samples,
    )
