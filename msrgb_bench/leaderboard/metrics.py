"""Scoring with scikit-learn: point metrics, seeded bootstrap intervals, seed aggregation.

Single-label targets (the paper's setting) get:

- ``oa``: overall accuracy (the paper's metric), :func:`sklearn.metrics.accuracy_score`;
- ``aa``: average accuracy, the mean per-class recall over the classes present in the labels,
  :func:`sklearn.metrics.balanced_accuracy_score`;
- ``kappa``: Cohen's kappa, :func:`sklearn.metrics.cohen_kappa_score`;
- ``macro_f1``: the mean F1 over the classes present in the labels or the predictions
  (scikit-learn's default label set, ``zero_division=0``);
- per-class precision, recall, F1 and support for every class, and the confusion matrix with
  rows = true class and columns = predicted class, both in ``dataset.json`` class order.

Multi-label targets get ``micro_map`` and ``macro_map`` (average precision of the scores;
the macro mean is over classes with at least one positive), ``micro_f1`` and ``macro_f1`` of
the 0/1 decisions taken at the submission's declared threshold (classes with neither a positive
nor a predicted positive are left out of the macro mean), per-class precision, recall, F1,
AP and support, and one 2x2 confusion matrix per class.

Intervals are percentile bootstrap intervals (95 % by default) from a seeded
:class:`numpy.random.Generator`, so the same input always gives the same interval. For
single-label targets each replicate resamples the samples with replacement; because every
metric depends only on the (true, predicted) pairs, a replicate is drawn as multinomial counts
over the confusion matrix's cells and scored by scikit-learn with those counts as sample
weights, which is the same distribution as resampling a million rows but costs only K x K rows.
Multi-label replicates resample rows and recompute average precision, which costs about
70 ms per replicate at 5,000 samples x 15 classes on one core: lower ``n_boot`` there if needed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)

from msrgb_bench.leaderboard.submission import AlignedPredictions

SINGLE_LABEL = "single-label"
MULTI_LABEL = "multi-label"
SINGLE_LABEL_METRICS = ("oa", "aa", "kappa", "macro_f1")
MULTI_LABEL_METRICS = ("micro_map", "macro_map", "micro_f1", "macro_f1")
# The metric a leaderboard ranks by, per task.
PRIMARY_METRIC = {SINGLE_LABEL: "oa", MULTI_LABEL: "macro_map"}
DEFAULT_BOOTSTRAP = 1000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Scores:
    """Everything measured on one submission.

    Attributes:
        task: ``"single-label"`` or ``"multi-label"``.
        classes: Class names in index order.
        n_samples: Number of scored samples.
        metrics: Metric name -> value (see the module docstring); ``None`` where undefined.
        intervals: Metric name -> (low, high) bootstrap interval.
        per_class: One dict per class: ``class``, ``precision``, ``recall``, ``f1``,
            ``support`` (and ``ap`` for multi-label).
        confusion_matrix: K x K counts (single-label) or K x 2 x 2 (multi-label).
        threshold: The declared multi-label threshold.
        bootstrap: ``{"replicates": B, "seed": s, "confidence": c}``.
    """

    task: str
    classes: tuple[str, ...]
    n_samples: int
    metrics: dict[str, float | None]
    intervals: dict[str, tuple[float, float] | None]
    per_class: list[dict[str, Any]]
    confusion_matrix: list[Any]
    threshold: float | None = None
    bootstrap: dict[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> str:
        """Name of the metric leaderboards rank by."""
        return PRIMARY_METRIC[self.task]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the metrics at the top level."""
        return {
            "task": self.task,
            "classes": list(self.classes),
            "n_samples": self.n_samples,
            **self.metrics,
            "primary_metric": self.primary,
            "intervals": {k: list(v) if v else None for k, v in self.intervals.items()},
            "per_class": self.per_class,
            "confusion_matrix": self.confusion_matrix,
            "threshold": self.threshold,
            "bootstrap": self.bootstrap,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scores:
        """Rebuild from :meth:`to_dict`'s output."""
        names = SINGLE_LABEL_METRICS if data["task"] == SINGLE_LABEL else MULTI_LABEL_METRICS
        return cls(
            task=data["task"],
            classes=tuple(data["classes"]),
            n_samples=int(data["n_samples"]),
            metrics={k: data[k] for k in names},
            intervals={k: tuple(v) if v else None for k, v in data["intervals"].items()},
            per_class=list(data["per_class"]),
            confusion_matrix=list(data["confusion_matrix"]),
            threshold=data.get("threshold"),
            bootstrap=dict(data.get("bootstrap", {})),
        )


def score(
    aligned: AlignedPredictions,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Scores:
    """Score validated predictions.

    Args:
        aligned: Output of :func:`~msrgb_bench.leaderboard.submission.validate_submission`.
        n_boot: Bootstrap replicates (0 for no intervals).
        seed: Bootstrap seed.
        confidence: Interval coverage.

    Returns:
        The scores.
    """
    target = aligned.target
    if target.multilabel:
        assert aligned.proba is not None and aligned.threshold is not None
        return score_multilabel(
            target.y,
            aligned.y_pred,
            aligned.proba,
            target.classes,
            threshold=aligned.threshold,
            n_boot=n_boot,
            seed=seed,
            confidence=confidence,
        )
    return score_single_label(
        target.y, aligned.y_pred, target.classes, n_boot=n_boot, seed=seed, confidence=confidence
    )


# --- single-label -----------------------------------------------------------------------------


def _single_label_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, weight: np.ndarray | None = None
) -> dict[str, float]:
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected, handled by the AA definition.
        warnings.simplefilter("ignore", UserWarning)
        return {
            "oa": float(accuracy_score(y_true, y_pred, sample_weight=weight)),
            "aa": float(balanced_accuracy_score(y_true, y_pred, sample_weight=weight)),
            "kappa": float(cohen_kappa_score(y_true, y_pred, sample_weight=weight)),
            "macro_f1": float(
                f1_score(y_true, y_pred, average="macro", sample_weight=weight, zero_division=0)
            ),
        }


def score_single_label(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: Sequence[str],
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Scores:
    """Score single-label predictions (class indices in ``classes`` order).

    Args:
        y_true: True class indices, shape (n,).
        y_pred: Predicted class indices, shape (n,).
        classes: Class names in index order.
        n_boot: Bootstrap replicates (0 for no intervals).
        seed: Bootstrap seed.
        confidence: Interval coverage.

    Returns:
        The scores.
    """
    k = len(classes)
    labels = np.arange(k)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    metrics = _single_label_metrics(y_true, y_pred)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = [
        {
            "class": name,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    ]
    intervals: dict[str, tuple[float, float] | None] = dict.fromkeys(SINGLE_LABEL_METRICS)
    if n_boot > 0:
        # Resampling n rows == drawing multinomial counts over the confusion matrix's cells.
        counts = cm.ravel()
        cells = np.flatnonzero(counts)
        cell_true, cell_pred = np.divmod(cells, k)
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(len(y_true), counts[cells] / counts.sum(), size=n_boot)
        replicates = []
        for weight in draws:
            keep = weight > 0
            replicates.append(_single_label_metrics(cell_true[keep], cell_pred[keep], weight[keep]))
        intervals = _percentile_intervals(replicates, SINGLE_LABEL_METRICS, confidence)
    return Scores(
        task=SINGLE_LABEL,
        classes=tuple(classes),
        n_samples=len(y_true),
        metrics=dict(metrics),
        intervals=intervals,
        per_class=per_class,
        confusion_matrix=cm.tolist(),
        bootstrap={"replicates": n_boot, "seed": seed, "confidence": confidence},
    )


# --- multi-label ------------------------------------------------------------------------------


def _multilabel_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray
) -> dict[str, float | None]:
    positive = y_true.sum(axis=0) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        micro_map = float(average_precision_score(y_true, proba, average="micro"))
        macro_map = (
            float(average_precision_score(y_true[:, positive], proba[:, positive], average="macro"))
            if positive.any()
            else None
        )
        return {
            "micro_map": micro_map,
            "macro_map": macro_map,
            "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=np.nan)),
        }


def score_multilabel(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray,
    classes: Sequence[str],
    *,
    threshold: float,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Scores:
    """Score multi-label predictions.

    Args:
        y_true: True 0/1 matrix, shape (n, classes).
        y_pred: Predicted 0/1 matrix (the scores cut at ``threshold``).
        proba: Scores in [0, 1], shape (n, classes).
        classes: Class names in index order.
        threshold: The declared threshold, recorded with the scores.
        n_boot: Bootstrap replicates (0 for no intervals).
        seed: Bootstrap seed.
        confidence: Interval coverage.

    Returns:
        The scores.
    """
    y_true = np.asarray(y_true, dtype=np.int8)
    y_pred = np.asarray(y_pred, dtype=np.int8)
    proba = np.asarray(proba, dtype=np.float64)
    metrics = _multilabel_metrics(y_true, y_pred, proba)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, average=None, zero_division=np.nan
        )
    positive = y_true.sum(axis=0) > 0
    ap = np.full(len(classes), np.nan)
    if positive.any():
        ap[positive] = average_precision_score(
            y_true[:, positive], proba[:, positive], average=None
        )
    per_class = [
        {
            "class": name,
            "precision": _nan_to_none(precision[i]),
            "recall": _nan_to_none(recall[i]),
            "f1": _nan_to_none(f1[i]),
            "ap": _nan_to_none(ap[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    ]
    intervals: dict[str, tuple[float, float] | None] = dict.fromkeys(MULTI_LABEL_METRICS)
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        n = len(y_true)
        replicates = []
        for _ in range(n_boot):
            rows = rng.integers(0, n, size=n)
            replicates.append(_multilabel_metrics(y_true[rows], y_pred[rows], proba[rows]))
        intervals = _percentile_intervals(replicates, MULTI_LABEL_METRICS, confidence)
    return Scores(
        task=MULTI_LABEL,
        classes=tuple(classes),
        n_samples=len(y_true),
        metrics={k: _nan_to_none(v) for k, v in metrics.items()},
        intervals=intervals,
        per_class=per_class,
        confusion_matrix=multilabel_confusion_matrix(y_true, y_pred).tolist(),
        threshold=threshold,
        bootstrap={"replicates": n_boot, "seed": seed, "confidence": confidence},
    )


# --- intervals and seeds ----------------------------------------------------------------------


def _nan_to_none(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def _percentile_intervals(
    replicates: list[dict[str, float]] | list[dict[str, float | None]],
    names: Sequence[str],
    confidence: float,
) -> dict[str, tuple[float, float] | None]:
    """Return the percentile interval of each metric over the replicates (NaNs left out)."""
    table = pd.DataFrame(replicates, columns=list(names), dtype=np.float64)
    tail = (1.0 - confidence) / 2.0
    out: dict[str, tuple[float, float] | None] = {}
    for name in names:
        values = table[name].dropna().to_numpy()
        if len(values) == 0:
            out[name] = None
        else:
            low, high = np.quantile(values, [tail, 1.0 - tail])
            out[name] = (float(low), float(high))
    return out


def aggregate_seeds(
    frame: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str]
) -> pd.DataFrame:
    """Aggregate per-seed rows to mean, sample standard deviation (ddof=1) and count.

    Args:
        frame: One row per entry and seed, with the ``keys`` and ``metrics`` columns.
        keys: Columns that identify an entry.
        metrics: Metric columns to aggregate (missing values are skipped).

    Returns:
        One row per entry with ``<metric>_mean``, ``<metric>_std`` (NaN for a single seed) and
        ``n_seeds``.
    """
    grouped = frame.groupby(list(keys), sort=True, dropna=False)
    values = grouped[list(metrics)]
    stats = pd.concat([values.mean().add_suffix("_mean"), values.std().add_suffix("_std")], axis=1)
    stats["n_seeds"] = grouped.size()
    return stats.reset_index()
