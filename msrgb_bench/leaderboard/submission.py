"""Read, write and validate submissions (the format is described in :mod:`.schema`).

Three steps, each with one function:

- :func:`write_submission` checks a predictions frame (everything that can be checked without
  the dataset's labels) and writes it and its sidecar atomically.
- :func:`read_submission` (or :func:`parse_predictions` + :func:`parse_sidecar` for uploaded
  bytes) reads them back, refusing files over the size limit, unreadable files and a sidecar
  that belongs to other predictions.
- :func:`validate_submission` checks a submission against the ground truth and returns the
  predictions aligned with the labels, ready to score. Every problem found is listed in one
  :class:`~msrgb_bench.leaderboard.errors.SubmissionError`.

Messages name sample ids (which are public) but never a true label.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from msrgb_bench.atomic import atomic_path, write_text_atomic
from msrgb_bench.data.manifest import file_sha256
from msrgb_bench.leaderboard.errors import SubmissionError
from msrgb_bench.leaderboard.schema import (
    DEFAULT_MAX_BYTES,
    ID_COLUMN,
    PRED_COLUMN,
    PRED_PREFIX,
    PROB_PREFIX,
    PROB_SUM_ATOL,
    SUFFIXES,
    SubmissionMeta,
    sidecar_path,
)
from msrgb_bench.leaderboard.truth import GroundTruth, Target

__all__ = [
    "AlignedPredictions",
    "SubmissionError",
    "SubmissionMeta",
    "parse_predictions",
    "parse_sidecar",
    "read_submission",
    "sidecar_json",
    "validate_submission",
    "write_submission",
]

_EXAMPLES = 3


@dataclass(frozen=True)
class AlignedPredictions:
    """A validated submission's predictions in the ground truth's ``sample_id`` order.

    Attributes:
        target: The labels scored against.
        y_pred: Class indices (n,) int64, or a 0/1 matrix (n, classes) int8 for multi-label.
        proba: Probabilities or scores (n, classes) float64, or ``None`` if not given.
        threshold: The declared multi-label threshold (``None`` for single-label).
    """

    target: Target
    y_pred: np.ndarray
    proba: np.ndarray | None
    threshold: float | None


# --- writing ----------------------------------------------------------------------------------


def sidecar_json(meta: SubmissionMeta, predictions_name: str, predictions_sha256: str) -> str:
    """Return the sidecar's JSON text for a predictions file."""
    body = {
        "meta": meta.to_dict(),
        "predictions_file": predictions_name,
        "predictions_sha256": predictions_sha256,
    }
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def write_submission(path: str | Path, predictions: pd.DataFrame, meta: SubmissionMeta) -> Path:
    """Check and write a predictions file and its metadata sidecar, each atomically.

    The format follows the suffix (``.csv`` or ``.parquet``); the sidecar is
    ``PATH.meta.json``. Columns are written in a fixed order (``sample_id``, predictions,
    probabilities) and rows sorted by ``sample_id``.

    Args:
        path: Where to write the predictions.
        predictions: ``sample_id`` and ``pred`` (or ``pred_<class>``) and optional
            ``prob_<class>`` columns.
        meta: What the predictions are.

    Returns:
        The predictions path.

    Raises:
        SubmissionError: If the frame breaks the format (nothing is written then).
    """
    path = Path(path)
    fmt = _format_of(path.name)
    problems = _frame_problems(predictions, classes=None, multilabel=None)
    multilabel = any(str(c).startswith(PRED_PREFIX) for c in predictions.columns)
    problems += _threshold_problems(meta, multilabel)
    if not problems and multilabel:
        problems += _consistency_problems(predictions, meta.threshold)
    if problems:
        raise SubmissionError(problems, str(path))
    frame = _canonical(predictions).sort_values(ID_COLUMN, kind="stable")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(path) as tmp:
        if fmt == ".csv":
            pa_csv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp, compression="zstd")
        digest = file_sha256(tmp)
    write_text_atomic(sidecar_path(path), sidecar_json(meta, path.name, digest))
    return path


# --- reading ----------------------------------------------------------------------------------


def read_submission(
    path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[pd.DataFrame, SubmissionMeta]:
    """Read a predictions file and its sidecar.

    Args:
        path: The predictions file (the sidecar is found beside it).
        max_bytes: Largest predictions file accepted.

    Returns:
        The predictions frame and the metadata.

    Raises:
        SubmissionError: If a file is missing, too large or unreadable, or the sidecar does not
            belong to the predictions.
    """
    path = Path(path)
    if not path.is_file():
        raise SubmissionError("no such predictions file", str(path))
    size = path.stat().st_size
    if size > max_bytes:
        raise SubmissionError(_size_problem(size, max_bytes), str(path))
    data = path.read_bytes()
    side = sidecar_path(path)
    if not side.is_file():
        raise SubmissionError(
            f"no metadata sidecar {side.name} beside it (write submissions with write_submission)",
            str(path),
        )
    meta = parse_sidecar(side.read_bytes(), data, source=str(side))
    return parse_predictions(data, path.name, source=str(path)), meta


def parse_sidecar(sidecar: bytes, predictions: bytes, source: str = "metadata") -> SubmissionMeta:
    """Parse a sidecar and check that it pins ``predictions`` (by sha256).

    Raises:
        SubmissionError: If it is not JSON, lacks keys, or names other predictions.
    """
    try:
        body: Any = json.loads(sidecar.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionError(f"metadata is not valid JSON ({exc})", source) from None
    if not isinstance(body, dict) or "meta" not in body or "predictions_sha256" not in body:
        raise SubmissionError(
            "metadata must be an object with keys 'meta' and 'predictions_sha256'", source
        )
    actual = hashlib.sha256(predictions).hexdigest()
    if body["predictions_sha256"] != actual:
        raise SubmissionError(
            f"predictions_sha256 does not match the predictions file (sha256 {actual}): the "
            "metadata belongs to other predictions",
            source,
        )
    return SubmissionMeta.from_dict(body["meta"], source=source)


def parse_predictions(data: bytes, name: str, source: str | None = None) -> pd.DataFrame:
    """Parse predictions from bytes; the format follows ``name``'s suffix.

    ``sample_id`` is always read as text. Values are not checked here (see
    :func:`validate_submission`).

    Raises:
        SubmissionError: If the suffix is unknown or the bytes are not a readable table.
    """
    source = source or name
    fmt = _format_of(name, source)
    try:
        if fmt == ".csv":
            options = pa_csv.ConvertOptions(
                column_types={ID_COLUMN: pa.string()}, strings_can_be_null=False
            )
            table = pa_csv.read_csv(io.BytesIO(data), convert_options=options)
        else:
            table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        kind = "CSV" if fmt == ".csv" else "Parquet"
        raise SubmissionError(f"not a readable {kind} file ({str(exc)[:200]})", source) from None
    try:
        return table.to_pandas()
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise SubmissionError(f"unsupported column types ({str(exc)[:200]})", source) from None


# --- validation -------------------------------------------------------------------------------


def validate_submission(
    predictions: pd.DataFrame,
    meta: SubmissionMeta,
    truth: GroundTruth,
    source: str | None = None,
) -> AlignedPredictions:
    """Check a submission against the ground truth and align it with the labels.

    Args:
        predictions: The predictions frame.
        meta: Its metadata.
        truth: The labels to score against.
        source: File name used in error messages.

    Returns:
        The predictions in the target's ``sample_id`` order.

    Raises:
        SubmissionError: Listing every problem: dataset name or hash, split, missing, extra
            or duplicated ids, bad or out-of-range predictions, bad probabilities.
    """
    problems: list[str] = []
    if meta.dataset_hash != truth.dataset_hash:
        problems.append(
            f"dataset_hash {meta.dataset_hash[:12]}... does not match the scored dataset's "
            f"{truth.dataset_hash[:12]}... ({truth.dataset}): the predictions were made on "
            "another build of the dataset"
        )
    if meta.dataset != truth.dataset:
        problems.append(f"dataset {meta.dataset!r:.60} is not the scored dataset {truth.dataset!r}")
    if problems:
        raise SubmissionError(problems, source)
    try:
        target = truth.target(meta.split, meta.modality)
    except SubmissionError as exc:
        raise SubmissionError(exc.problems, source) from None
    wanted = pd.Index(target.sample_ids, dtype=object)
    problems += _threshold_problems(meta, target.multilabel)
    problems += _frame_problems(predictions, classes=target.classes, multilabel=target.multilabel)
    order: np.ndarray | None = None
    if ID_COLUMN in predictions.columns:
        id_problems, order = _match_ids(predictions[ID_COLUMN], wanted)
        problems += id_problems
    if not problems and target.multilabel:
        problems += _consistency_problems(predictions, meta.threshold)
    if problems:
        raise SubmissionError(problems, source)

    # The checks passed: ids are unique and the same set as the target's.
    assert order is not None
    classes = target.classes
    if target.multilabel:
        decided = predictions[[PRED_PREFIX + c for c in classes]].to_numpy(dtype=np.float64)
        y_pred = decided.astype(np.int8)[order]
    else:
        y_pred = predictions[PRED_COLUMN].to_numpy(dtype=np.float64).astype(np.int64)[order]
    prob_cols = [PROB_PREFIX + c for c in classes]
    proba = (
        predictions[prob_cols].to_numpy(dtype=np.float64)[order]
        if all(c in predictions.columns for c in prob_cols)
        else None
    )
    return AlignedPredictions(
        target=target,
        y_pred=y_pred,
        proba=proba,
        threshold=meta.threshold if target.multilabel else None,
    )


# --- checks -----------------------------------------------------------------------------------


def _format_of(name: str, source: str | None = None) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise SubmissionError(
            f"unknown predictions format {suffix or '(no suffix)'!r}; use {' or '.join(SUFFIXES)}",
            source or name,
        )
    return suffix


def _size_problem(size: int, max_bytes: int) -> str:
    return f"file is {size} bytes, over the size limit of {max_bytes} bytes"


def _examples(values: Sequence[Any] | np.ndarray | pd.Series) -> str:
    """Format up to three values for a message, each shortened to 60 characters."""
    shown = [repr(v)[:60] for v in list(values)[:_EXAMPLES]]
    more = ", ..." if len(values) > _EXAMPLES else ""
    return ", ".join(shown) + more


def _threshold_problems(meta: SubmissionMeta, multilabel: bool) -> list[str]:
    if multilabel and meta.threshold is None:
        return ["multi-label predictions need the declared threshold in the metadata"]
    if not multilabel and meta.threshold is not None:
        return ["threshold is for multi-label predictions only; leave it out"]
    return []


def _frame_problems(
    frame: pd.DataFrame, classes: Sequence[str] | None, multilabel: bool | None
) -> list[str]:
    """Return every format problem of a predictions frame.

    Args:
        frame: The predictions.
        classes: Class names in index order, or ``None`` where unknown (when writing).
        multilabel: Whether the target is multi-label, or ``None`` to infer from the columns.
    """
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        return ["duplicated column names"]
    if ID_COLUMN not in columns:
        return [f"missing column {ID_COLUMN!r}"]
    pred_cols = [c for c in columns if c.startswith(PRED_PREFIX)]
    prob_cols = [c for c in columns if c.startswith(PROB_PREFIX)]
    has_pred = PRED_COLUMN in columns
    problems: list[str] = []
    other = [c for c in columns if c not in {ID_COLUMN, PRED_COLUMN, *pred_cols, *prob_cols}]
    if other:
        problems.append(f"unexpected column(s): {_examples(other)}")
    if multilabel is None:
        multilabel = bool(pred_cols) and not has_pred
    layout = _layout_problems(has_pred, pred_cols, prob_cols, multilabel)
    if layout:
        return problems + layout

    ids = frame[ID_COLUMN]
    problems += _id_problems(ids)
    names_pred = [c[len(PRED_PREFIX) :] for c in pred_cols]
    names_prob = [c[len(PROB_PREFIX) :] for c in prob_cols]
    naming: list[str] = []
    if classes is not None:
        if multilabel:
            naming += _class_column_problems(PRED_PREFIX, names_pred, classes, required=True)
        if prob_cols:
            naming += _class_column_problems(PROB_PREFIX, names_prob, classes, required=False)
    elif multilabel and set(names_prob) != set(names_pred):
        naming.append(f"{PROB_PREFIX}<class> columns must name the same classes as {PRED_PREFIX}")
    if naming:
        return problems + naming

    n_classes = len(classes) if classes is not None else (len(prob_cols) or None)
    if multilabel:
        problems += _indicator_problems(frame, pred_cols, ids)
    else:
        problems += _pred_problems(frame[PRED_COLUMN], ids, n_classes)
    if prob_cols:
        problems += _prob_problems(frame, prob_cols, ids, sum_to_one=not multilabel)
    return problems


def _layout_problems(
    has_pred: bool, pred_cols: list[str], prob_cols: list[str], multilabel: bool
) -> list[str]:
    """Return problems with which prediction columns are present."""
    if has_pred and pred_cols:
        return [
            f"give either {PRED_COLUMN!r} (single-label) or {PRED_PREFIX}<class> columns "
            "(multi-label), not both"
        ]
    if multilabel and not pred_cols:
        return [f"this target is multi-label: give one 0/1 column {PRED_PREFIX}<class> per class"]
    if multilabel and not prob_cols:
        return [
            f"multi-label predictions need {PROB_PREFIX}<class> scores for every class "
            "(mAP is computed from them)"
        ]
    if not multilabel and not has_pred:
        note = " (this target is single-label)" if pred_cols else ""
        return [f"missing column {PRED_COLUMN!r}{note}"]
    return []


def _id_problems(ids: pd.Series) -> list[str]:
    kind = pd.api.types.infer_dtype(ids, skipna=False)
    if kind not in ("string", "empty"):
        return [f"{ID_COLUMN} must be text, found {kind} values"]
    empty = (ids.str.len() == 0).to_numpy()
    if empty.any():
        rows = _examples(np.flatnonzero(empty))
        return [f"{int(empty.sum())} empty {ID_COLUMN} value(s) (rows {rows})"]
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        unique = pd.unique(dup.to_numpy())
        return [f"{len(unique)} duplicated {ID_COLUMN}(s), {len(dup)} rows: {_examples(unique)}"]
    return []


def _match_ids(ids: pd.Series, wanted: pd.Index) -> tuple[list[str], np.ndarray | None]:
    """Find each wanted id's row (hash look-ups); report missing and extra ids.

    Returns:
        The problems, and the row of each wanted id when the ids are unique (else ``None``).
    """
    given = pd.Index(ids.to_numpy(dtype=object), dtype=object)
    order = given.get_indexer(wanted) if given.is_unique else None
    found = wanted.isin(given) if order is None else order >= 0
    problems = []
    if not found.all():
        missing = np.sort(wanted[~found].to_numpy())
        shown = _examples(missing[: _EXAMPLES + 1])
        problems.append(f"{len(missing)} missing {ID_COLUMN}(s): {shown}")
    if order is None or int(found.sum()) < len(given):
        extra = np.sort(given[~given.isin(wanted)].unique().to_numpy())
        if len(extra):
            shown = _examples(extra[: _EXAMPLES + 1])
            problems.append(f"{len(extra)} extra {ID_COLUMN}(s) not in the scored split: {shown}")
    return problems, order


def _class_column_problems(
    prefix: str, names: list[str], classes: Sequence[str], required: bool
) -> list[str]:
    problems = []
    unknown = [prefix + n for n in names if n not in classes]
    if unknown:
        problems.append(f"column(s) for unknown classes: {_examples(unknown)}")
    missing = [prefix + c for c in classes if c not in names]
    if missing and (required or names):
        problems.append(f"missing column(s) {_examples(missing)} ({len(missing)} in all)")
    return problems


def _numeric(frame: pd.DataFrame, cols: list[str]) -> np.ndarray | None:
    if not all(pd.api.types.is_numeric_dtype(frame[c]) for c in cols):
        return None
    return frame[cols].to_numpy(dtype=np.float64, na_value=np.nan)


def _pred_problems(pred: pd.Series, ids: pd.Series, n_classes: int | None) -> list[str]:
    if not pd.api.types.is_numeric_dtype(pred) or pd.api.types.is_bool_dtype(pred):
        return [f"{PRED_COLUMN} must hold integer class indices, found type {pred.dtype}"]
    values = pred.to_numpy(dtype=np.float64, na_value=np.nan)
    not_int = ~np.isfinite(values) | (values != np.round(values))
    if not_int.any():
        return [
            f"{int(not_int.sum())} empty or non-integer {PRED_COLUMN} value(s) "
            f"(sample_id {_examples(ids.to_numpy()[not_int])})"
        ]
    upper = n_classes if n_classes is not None else np.inf
    out = (values < 0) | (values >= upper)
    if out.any():
        where = np.flatnonzero(out)
        allowed = f"0..{n_classes - 1}" if n_classes is not None else ">= 0"
        pairs = ", ".join(f"{int(values[i])} for {ids.iloc[i]!r:.60}" for i in where[:_EXAMPLES])
        return [f"{len(where)} {PRED_COLUMN} value(s) out of range {allowed} ({pairs})"]
    return []


def _indicator_problems(frame: pd.DataFrame, cols: list[str], ids: pd.Series) -> list[str]:
    values = _numeric(frame, cols)
    if values is None:
        return [f"{PRED_PREFIX}<class> columns must hold 0 or 1"]
    bad = ~np.isin(values, (0.0, 1.0)).all(axis=1)
    if bad.any():
        return [
            f"{int(bad.sum())} row(s) with {PRED_PREFIX}<class> values other than 0/1 "
            f"(sample_id {_examples(ids.to_numpy()[bad])})"
        ]
    return []


def _prob_problems(
    frame: pd.DataFrame, cols: list[str], ids: pd.Series, sum_to_one: bool
) -> list[str]:
    values = _numeric(frame, cols)
    if values is None:
        return [f"{PROB_PREFIX}<class> columns must hold numbers"]
    id_values = ids.to_numpy()
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        return [
            f"{int((~finite).sum())} row(s) with empty or non-finite probabilities "
            f"(sample_id {_examples(id_values[~finite])})"
        ]
    outside = ((values < 0) | (values > 1)).any(axis=1)
    if outside.any():
        return [
            f"{int(outside.sum())} row(s) with probabilities outside [0, 1] "
            f"(sample_id {_examples(id_values[outside])})"
        ]
    if sum_to_one:
        sums = values.sum(axis=1)
        off = np.abs(sums - 1.0) > PROB_SUM_ATOL
        if off.any():
            where = np.flatnonzero(off)
            pairs = ", ".join(f"{id_values[i]!r:.60} sums to {sums[i]:.6g}" for i in where[:3])
            return [
                f"{len(where)} row(s) whose probabilities do not sum to one "
                f"within {PROB_SUM_ATOL} ({pairs})"
            ]
    return []


def _consistency_problems(frame: pd.DataFrame, threshold: float | None) -> list[str]:
    """Multi-label: the 0/1 decisions must be the scores cut at the declared threshold."""
    prob_cols = [c for c in frame.columns if str(c).startswith(PROB_PREFIX)]
    if not prob_cols or threshold is None:
        return []
    pred_cols = [PRED_PREFIX + str(c)[len(PROB_PREFIX) :] for c in prob_cols]
    decided = frame[pred_cols].to_numpy(dtype=np.float64) == 1
    cut = frame[prob_cols].to_numpy(dtype=np.float64) >= threshold
    bad = (decided != cut).any(axis=1)
    if bad.any():
        return [
            f"{int(bad.sum())} row(s) whose {PRED_PREFIX}<class> values differ from "
            f"{PROB_PREFIX}<class> >= threshold {threshold} "
            f"(sample_id {_examples(frame[ID_COLUMN].to_numpy()[bad])})"
        ]
    return []


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with fixed column order and dtypes (assumes the frame passed the checks)."""
    columns = [str(c) for c in frame.columns]
    pred_cols = [c for c in columns if c.startswith(PRED_PREFIX)]
    prob_cols = [c for c in columns if c.startswith(PROB_PREFIX)]
    out = pd.DataFrame({ID_COLUMN: frame[ID_COLUMN].astype(object).to_numpy()})
    if PRED_COLUMN in columns:
        out[PRED_COLUMN] = frame[PRED_COLUMN].to_numpy(dtype=np.float64).astype(np.int64)
    for col in pred_cols:
        out[col] = frame[col].to_numpy(dtype=np.float64).astype(np.int8)
    for col in prob_cols:
        out[col] = frame[col].to_numpy(dtype=np.float64)
    return out
