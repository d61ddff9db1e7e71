"""Benchmark protocols: named, documented training settings loaded from YAML.

A protocol fixes everything that defines the experiment except which cells are run (pairs,
methods, seeds) and where they run (accelerator, devices, strategy, precision, workers, which
are passed through by the runner). Shipped protocols live in ``protocols/*.yaml`` beside this
module (``paper``, ``mini``); any other YAML file with the same keys can be loaded by path.

Keys of a protocol file::

    name: mini                      # required
    description: ...                # required, free text
    teacher_seed: 42                # the seed of the one teacher trained per teacher arch
    teacher: {epochs, batch_size, lr, weight_decay, augment, train_batches, precise_bn_batches}
    student: {epochs, batch_size, lr, weight_decay, augment, train_batches, precise_bn_batches}
    preset: paper                   # method preset (paper or original)
    matcher: {epochs, batch_size, lr, arch, train_batches, precise_bn_batches}   # SemBridge's SSM
    method_overrides: {METHOD: {SETTING: VALUE}}
    bootstrap: {replicates, seed}   # per-cell bootstrap of the test metrics

Teacher seed policy: one teacher is trained per teacher architecture, with ``teacher_seed``,
and every student seed of every method distils from that same teacher, so that the spread over
seeds measures the student's training only. ``method_overrides`` keys are method names: the
settings under ``sembridge`` apply to every method whose ``+``-separated parts include
``sembridge`` (``sembridge``, ``dkd+sembridge``...), and only to those.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from msrgb_bench.baselines.registry import PLUGIN_SEPARATOR
from msrgb_bench.engine.config import TrainerConfig
from msrgb_bench.errors import ProtocolError
from msrgb_bench.shipped_yaml import list_shipped, read_shipped_or_file

PROTOCOL_DIR = "protocols"
# TrainerConfig fields a protocol may set (execution settings come from the command line, and
# seeds from teacher_seed and --seeds).
TRAINER_KEYS = (
    "epochs", "batch_size", "lr", "weight_decay", "augment", "train_batches", "precise_bn_batches",
)  # fmt: skip
PRESET_NAMES = ("paper", "original")
_TOP_KEYS = (
    "name",
    "description",
    "teacher_seed",
    "teacher",
    "student",
    "preset",
    "matcher",
    "method_overrides",
    "bootstrap",
)
_REQUIRED = ("name", "description", "teacher", "student")


@dataclass(frozen=True)
class MatcherSettings:
    """How SemBridge's matcher (SSM) is trained: once per dataset, with ``teacher_seed``.

    Attributes:
        epochs: Training epochs.
        batch_size: Batch size.
        lr: AdamW learning rate.
        arch: Backbone of the matcher's two towers.
        train_batches: At most this many batches per epoch (``None``: all).
        precise_bn_batches: PreciseBN batches before each validation (0: off); see
            :class:`~msrgb_bench.engine.config.TrainerConfig`.
    """

    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    arch: str = "resnet34"
    train_batches: int | None = None
    precise_bn_batches: int = 0


@dataclass(frozen=True)
class BootstrapSettings:
    """The per-cell percentile bootstrap of the test metrics (95 % intervals).

    Attributes:
        replicates: Bootstrap replicates per cell.
        seed: Seed of the resampling (the same for every cell).
    """

    replicates: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class Protocol:
    """A benchmark protocol.

    Attributes:
        name: Short name.
        description: What it is for.
        teacher: Teacher optimisation settings; ``seed`` is the teacher seed.
        student: Student optimisation settings (the seed is set per cell).
        preset: Method preset.
        matcher: Matcher settings for SemBridge methods.
        method_overrides: Method (or plug-in) name -> settings passed to ``create_method``.
        bootstrap: Bootstrap settings.
        source: The file it was loaded from.
    """

    name: str
    description: str
    teacher: TrainerConfig
    student: TrainerConfig
    preset: str = "paper"
    matcher: MatcherSettings = field(default_factory=MatcherSettings)
    method_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    source: str = ""

    @property
    def teacher_seed(self) -> int:
        """The seed of every teacher (and of the matcher)."""
        return self.teacher.seed

    def overrides_for(self, method: str) -> dict[str, Any]:
        """Return the method settings to change for ``method`` (merged over its parts)."""
        merged: dict[str, Any] = {}
        for part in method.split(PLUGIN_SEPARATOR):
            merged.update(self.method_overrides.get(part, {}))
        return merged

    def to_dict(self) -> dict[str, Any]:
        """Return the protocol as a JSON-ready dict, in the layout of its YAML file."""
        return {
            "name": self.name,
            "description": self.description,
            "teacher_seed": self.teacher_seed,
            "teacher": {k: getattr(self.teacher, k) for k in TRAINER_KEYS},
            "student": {k: getattr(self.student, k) for k in TRAINER_KEYS},
            "preset": self.preset,
            "matcher": {f.name: getattr(self.matcher, f.name) for f in fields(MatcherSettings)},
            "method_overrides": {k: dict(v) for k, v in sorted(self.method_overrides.items())},
            "bootstrap": {
                f.name: getattr(self.bootstrap, f.name) for f in fields(BootstrapSettings)
            },
        }

    def fingerprint(self) -> str:
        """Return the sha256 of the settings that shape results (not the description)."""
        data = {k: v for k, v in self.to_dict().items() if k != "description"}
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- loading ----------------------------------------------------------------------------------


def _check_type(value: Any, kind: type | tuple[type, ...], where: Path, key: str) -> Any:
    """Return ``value`` if it is of ``kind`` (bools are not numbers here)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise ProtocolError(where, f"'{key}' must be {names}, got {value!r}")
    return value


def _mapping(raw: Any, where: Path, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ProtocolError(where, f"'{key}' must be a mapping with keys {', '.join(allowed)}")
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise ProtocolError(where, f"unknown key '{key}.{unknown[0]}'; known: {', '.join(allowed)}")
    return raw


_TRAINER_TYPES: dict[str, type | tuple[type, ...]] = {
    "epochs": int,
    "batch_size": int,
    "lr": (float, int),
    "weight_decay": (float, int),
    "augment": bool,
    "train_batches": (int, type(None)),
    "precise_bn_batches": int,
}


def _trainer(raw: Any, where: Path, key: str, seed: int) -> TrainerConfig:
    values = _mapping(raw, where, key, TRAINER_KEYS)
    for name, value in values.items():
        _check_type(value, _TRAINER_TYPES[name], where, f"{key}.{name}")
    try:
        return TrainerConfig(seed=seed, **values)
    except ValueError as exc:
        raise ProtocolError(where, f"'{key}': {exc}") from exc


def _matcher(raw: Any, where: Path) -> MatcherSettings:
    allowed = tuple(f.name for f in fields(MatcherSettings))
    values = _mapping(raw, where, "matcher", allowed)
    types: dict[str, type | tuple[type, ...]] = {
        "epochs": int, "batch_size": int, "lr": (float, int), "arch": str,
        "train_batches": (int, type(None)), "precise_bn_batches": int,
    }  # fmt: skip
    for name, value in values.items():
        _check_type(value, types[name], where, f"matcher.{name}")
    settings = MatcherSettings(**values)
    if settings.epochs < 1 or settings.batch_size < 1 or settings.lr <= 0:
        raise ProtocolError(where, "'matcher' epochs and batch_size must be >= 1, lr > 0")
    return settings


def _bootstrap(raw: Any, where: Path) -> BootstrapSettings:
    values = _mapping(raw, where, "bootstrap", ("replicates", "seed"))
    for name, value in values.items():
        _check_type(value, int, where, f"bootstrap.{name}")
        if value < 0:
            raise ProtocolError(where, f"'bootstrap.{name}' must be >= 0, got {value}")
    return BootstrapSettings(**values)


def _overrides(raw: Any, where: Path) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise ProtocolError(where, "'method_overrides' must map method names to settings")
    out: dict[str, dict[str, Any]] = {}
    for method, settings in raw.items():
        if not isinstance(method, str) or PLUGIN_SEPARATOR in method:
            raise ProtocolError(
                where, f"'method_overrides' key {method!r} must be one method or plug-in name"
            )
        if not isinstance(settings, dict) or not all(isinstance(k, str) for k in settings):
            raise ProtocolError(
                where, f"'method_overrides.{method}' must map setting names to values"
            )
        out[method] = dict(settings)
    return out


def parse_protocol(data: Any, where: Path) -> Protocol:
    """Build a protocol from parsed YAML.

    Raises:
        ProtocolError: Naming ``where`` and the offending key.
    """
    if not isinstance(data, dict):
        raise ProtocolError(where, "a protocol must be a YAML mapping")
    unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
    if unknown:
        raise ProtocolError(
            where, f"unknown protocol key '{unknown[0]}'; known: {', '.join(_TOP_KEYS)}"
        )
    for key in _REQUIRED:
        if key not in data:
            raise ProtocolError(where, f"missing required key '{key}'")
    name = _check_type(data["name"], str, where, "name")
    description = _check_type(data["description"], str, where, "description")
    seed = _check_type(data.get("teacher_seed", 42), int, where, "teacher_seed")
    if seed < 0:
        raise ProtocolError(where, f"'teacher_seed' must be >= 0, got {seed}")
    preset = _check_type(data.get("preset", "paper"), str, where, "preset")
    if preset not in PRESET_NAMES:
        raise ProtocolError(where, f"'preset' must be one of {', '.join(PRESET_NAMES)}")
    return Protocol(
        name=name,
        description=" ".join(description.split()),
        teacher=_trainer(data["teacher"], where, "teacher", seed),
        student=_trainer(data["student"], where, "student", 0),
        preset=preset,
        matcher=_matcher(data.get("matcher") or {}, where),
        method_overrides=_overrides(data.get("method_overrides") or {}, where),
        bootstrap=_bootstrap(data.get("bootstrap") or {}, where),
        source=str(where),
    )


def list_protocols() -> list[str]:
    """Return the names of the protocols shipped in the package, sorted."""
    return list_shipped("msrgb_bench.benchmark", PROTOCOL_DIR)


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Load a shipped protocol by name, or a protocol file by path.

    Raises:
        UnknownNameError: If no shipped protocol has that name and it is not a file.
        ProtocolError: If the file is not a valid protocol.
    """
    path, data = read_shipped_or_file(
        name_or_path, package="msrgb_bench.benchmark", folder=PROTOCOL_DIR, kind="protocol",
        error=ProtocolError,
    )  # fmt: skip
    return parse_protocol(data, path)
