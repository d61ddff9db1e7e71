"""The submission format: what a predictions file holds and the metadata that goes with it.

A submission is two files side by side::

    preds.csv              (or preds.parquet) one row per sample
    preds.csv.meta.json    the sidecar: {"meta": {...}, "predictions_file": ...,
                                         "predictions_sha256": ...}

The metadata always lives in the JSON sidecar, for CSV and Parquet alike, so that there is one way
to read it; the sidecar pins the predictions file by sha256, so a sidecar that belongs to another
(or a half-written) predictions file is detected.

Predictions columns:

- ``sample_id`` (text): the dataset's sample ids of the scored split and modality, each once.
- Single-label targets: ``pred`` (int, class index in ``dataset.json`` order) and, optionally,
  ``prob_<class name>`` for every class: finite, in [0, 1], summing to one per row
  (within :data:`PROB_SUM_ATOL`).
- Multi-label targets (the multi-label teacher modality of a multi-label dataset): one 0/1
  column ``pred_<class name>`` per class, the decisions taken at the threshold declared in
  :attr:`SubmissionMeta.threshold`, and a ``prob_<class name>`` score in [0, 1] for every class
  (mAP is computed from them; ``pred_<c>`` must equal ``prob_<c> >= threshold``).

No other column is allowed.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from msrgb_bench.data.manifest import MODALITIES
from msrgb_bench.leaderboard.errors import SubmissionError

SUBMISSION_SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)

SCORED_SPLITS = ("test", "val")
CHECKPOINT_RULES = ("best-val", "last")

ID_COLUMN = "sample_id"
PRED_COLUMN = "pred"
PRED_PREFIX = "pred_"
PROB_PREFIX = "prob_"
# Tolerance on the row sums of single-label probabilities (allows CSVs rounded to 4 decimals).
PROB_SUM_ATOL = 1e-3

SUFFIXES = (".csv", ".parquet")
SIDECAR_SUFFIX = ".meta.json"
# Largest predictions file accepted, in bytes.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_SHORT_TEXT_MAX = 200
_NOTES_MAX = 2000
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def sidecar_path(predictions_path: str | Path) -> Path:
    """Return the metadata sidecar of a predictions file (``NAME`` -> ``NAME.meta.json``)."""
    path = Path(predictions_path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


@dataclass(frozen=True, kw_only=True)
class SubmissionMeta:
    """What a predictions file is: which dataset and split, and how the model was made.

    Construction checks every field and raises :class:`SubmissionError` naming each bad one.

    Attributes:
        dataset: Recipe name of the dataset (``dataset.json`` ``recipe``).
        dataset_hash: The dataset's ``content_hash`` from ``dataset.json`` (64 hex digits). A
            public copy with hidden test labels keeps the original dataset's hash.
        split: ``"test"`` or ``"val"``.
        method: Distillation method name (``none``, ``kd``, ``sembridge``, ``dkd+sembridge``...).
        teacher_arch: Teacher backbone (``resnet34``...). For ``none``, the teacher of the pair
            the run is compared in.
        student_arch: Student backbone.
        preset: Method preset (``paper``, ``original``...).
        seed: Training seed.
        config_hash: Hash of the full training configuration.
        code_version: Version (or git revision) of the code that trained the model.
        checkpoint_rule: ``"best-val"`` or ``"last"``: which checkpoint made the predictions.
        param_count: Number of parameters of the predicting model.
        train_seconds: Wall-clock training time in seconds.
        modality: Which samples are predicted: ``"rgb"`` (the student's, the default) or ``"ms"``.
        threshold: Multi-label only: the score threshold the 0/1 decisions were taken at.
        notes: Free text, private to the submitting team.
        schema_version: Version of this submission format.
    """

    dataset: str
    dataset_hash: str
    split: str
    method: str
    teacher_arch: str
    student_arch: str
    preset: str
    seed: int
    config_hash: str
    code_version: str
    checkpoint_rule: str
    param_count: int
    train_seconds: float
    modality: str = "rgb"
    threshold: float | None = None
    notes: str = ""
    schema_version: int = SUBMISSION_SCHEMA_VERSION

    def __post_init__(self) -> None:
        problems = _meta_problems(self)
        if problems:
            raise SubmissionError(problems)

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> SubmissionMeta:
        """Build from a parsed JSON object, refusing unknown, missing and mistyped keys.

        Args:
            data: The ``meta`` object of a sidecar.
            source: File name used in error messages.

        Raises:
            SubmissionError: Listing every problem.
        """
        if not isinstance(data, dict):
            raise SubmissionError("metadata must be a JSON object", source)
        version = data.get("schema_version", SUBMISSION_SCHEMA_VERSION)
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            raise SubmissionError(
                f"unknown schema_version {version!r}; this evaluator reads "
                f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}",
                source,
            )
        known = {f.name: f for f in fields(cls)}
        problems: list[str] = []
        unknown = sorted(set(data) - set(known))
        if unknown:
            problems.append(f"unknown metadata key(s): {', '.join(map(repr, unknown))}")
        required = [
            n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING
        ]
        missing = [n for n in required if n not in data]
        if missing:
            problems.append(f"missing metadata key(s): {', '.join(missing)}")
        for name, value in data.items():
            if name in known:
                problem = _type_problem(name, value)
                if problem:
                    problems.append(problem)
        if problems:
            raise SubmissionError(problems, source)
        kwargs = {k: v for k, v in data.items() if k in known}
        if "train_seconds" in kwargs:
            kwargs["train_seconds"] = float(kwargs["train_seconds"])
        if kwargs.get("threshold") is not None:
            kwargs["threshold"] = float(kwargs["threshold"])
        try:
            return cls(**kwargs)
        except SubmissionError as exc:
            raise SubmissionError(exc.problems, source) from None


_INT_FIELDS = ("seed", "param_count", "schema_version")
_FLOAT_FIELDS = ("train_seconds",)


def _type_problem(name: str, value: Any) -> str | None:
    """Return why a JSON value has the wrong type for metadata field ``name``, or ``None``."""
    if name in _INT_FIELDS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{name} must be an integer, got {value!r:.40}"
    if name in _FLOAT_FIELDS or name == "threshold":
        if name == "threshold" and value is None:
            return None
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"{name} must be a number, got {value!r:.40}"
    return None if isinstance(value, str) else f"{name} must be text, got {value!r:.40}"


def _meta_problems(meta: SubmissionMeta) -> list[str]:
    """Return every problem with the values of ``meta`` (types are assumed right)."""
    problems: list[str] = []
    if meta.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        problems.append(f"unknown schema_version {meta.schema_version!r}")
    short = (
        "dataset", "method", "teacher_arch", "student_arch", "preset", "config_hash",
        "code_version",
    )  # fmt: skip
    for name in short:
        value = getattr(meta, name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name} must be non-empty text")
        elif len(value) > _SHORT_TEXT_MAX or _CONTROL.search(value):
            problems.append(f"{name} must be at most {_SHORT_TEXT_MAX} printable characters")
    if not isinstance(meta.notes, str) or len(meta.notes) > _NOTES_MAX:
        problems.append(f"notes must be text of at most {_NOTES_MAX} characters")
    if not isinstance(meta.dataset_hash, str) or not _HEX64.match(meta.dataset_hash):
        problems.append(
            "dataset_hash must be the 64 lowercase hex digits of dataset.json's content_hash"
        )
    if meta.split not in SCORED_SPLITS:
        problems.append(f"split must be one of {', '.join(SCORED_SPLITS)}, got {meta.split!r:.40}")
    if meta.modality not in MODALITIES:
        problems.append(
            f"modality must be one of {', '.join(MODALITIES)}, got {meta.modality!r:.40}"
        )
    if meta.checkpoint_rule not in CHECKPOINT_RULES:
        problems.append(
            f"checkpoint_rule must be one of {', '.join(CHECKPOINT_RULES)}, "
            f"got {meta.checkpoint_rule!r:.40}"
        )
    if not isinstance(meta.seed, int) or meta.seed < 0:
        problems.append(f"seed must be a non-negative integer, got {meta.seed!r:.40}")
    if not isinstance(meta.param_count, int) or meta.param_count < 0:
        problems.append(f"param_count must be a non-negative integer, got {meta.param_count!r:.40}")
    if not _finite_non_negative(meta.train_seconds):
        problems.append(
            f"train_seconds must be a finite non-negative number, got {meta.train_seconds!r:.40}"
        )
    if meta.threshold is not None and not (
        _finite_non_negative(meta.threshold) and meta.threshold <= 1
    ):
        problems.append(f"threshold must be a number in [0, 1], got {meta.threshold!r:.40}")
    return problems


def _finite_non_negative(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
