"""The cells of a benchmark (pair x method x seed) and where each one's files go.

Pairs are written ``T/S`` with one letter per backbone: ``R`` = ResNet-34, ``M`` = MobileNetV2,
``S`` = ShuffleNetV2 (``R/M`` is a ResNet-34 teacher and a MobileNetV2 student). Layout of a
results folder ``RESULTS``::

    teachers/<arch>-seed<k>                      one teacher run per teacher arch
    matchers/<arch>-seed<k>                      one SemBridge matcher run per dataset
    students/<T-S>/<method>/seed<k>              one student run per cell
    predictions/<T-S>/<method>/seed<k>.csv       its test predictions (+ .meta.json sidecar)
    predictions/<T-S>/<method>/seed<k>.scores.json   the evaluator's scores of them
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from msrgb_bench.baselines.registry import PLUGIN_SEPARATOR, get_method
from msrgb_bench.benchmark.protocol import Protocol
from msrgb_bench.errors import ProtocolError
from msrgb_bench.models.pairs import ARCH_CODES, Pair, parse_pair

__all__ = ["ARCH_CODES", "Pair", "parse_pair"]  # re-exported: pairs are part of a plan

SEMBRIDGE = "sembridge"
TEACHERS_DIR = "teachers"
MATCHERS_DIR = "matchers"
STUDENTS_DIR = "students"
PREDICTIONS_DIR = "predictions"


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def parse_pairs(texts: Iterable[str]) -> list[Pair]:
    """Parse pair codes, dropping repeats (order kept)."""
    pairs = [parse_pair(t) for t in texts if t.strip()]
    if not pairs:
        raise ValueError("give at least one pair, e.g. R/R")
    return list({p.code: p for p in pairs}.values())


def parse_seeds(values: Iterable[int | str]) -> list[int]:
    """Parse non-negative integer seeds, dropping repeats (order kept).

    Raises:
        ValueError: For a seed that is not a non-negative integer, or no seed at all.
    """
    seeds: list[int] = []
    for value in values:
        text = str(value).strip()
        if not text.isdigit():
            raise ValueError(f"seeds are non-negative integers; got {value!r}")
        seeds.append(int(text))
    if not seeds:
        raise ValueError("give at least one seed")
    return list(dict.fromkeys(seeds))


def needs_matcher(method: str, protocol: Protocol | None = None) -> bool:
    """Whether ``method`` (e.g. ``"dkd+sembridge"``) pairs with a SemBridge matcher.

    A protocol that switches SSM off for it (``ssm: false``) makes it pair at random instead.
    """
    if SEMBRIDGE not in method.split(PLUGIN_SEPARATOR):
        return False
    return protocol is None or bool(protocol.overrides_for(method).get("ssm", True))


def _setting_names(method: str) -> set[str]:
    """Return the settings of every config ``create_method(method)`` builds.

    Raises:
        UnknownNameError: For an unknown method.
        ValueError: For a combination whose plug-in part is not a plug-in.
    """
    parts = method.split(PLUGIN_SEPARATOR)
    if len(parts) > 2 or not all(parts):
        raise ValueError(f"a method is NAME or TERM{PLUGIN_SEPARATOR}PLUGIN; got {method!r}")
    specs = [get_method(p) for p in parts]
    if len(specs) == 2 and not specs[1].is_plugin:
        raise ValueError(f"{parts[1]!r} is not a plug-in method; cannot build {method!r}")
    if len(specs) == 1 and specs[0].default_term is not None:
        specs.append(get_method(specs[0].default_term))
    return {f.name for spec in specs for f in fields(spec.config_cls)}


def check_methods(methods: Iterable[str], protocol: Protocol) -> list[str]:
    """Check method names and the protocol's overrides for them; return them without repeats.

    Raises:
        UnknownNameError: For an unknown method.
        ValueError: For a malformed combination, or no method at all.
        ProtocolError: If an override of the protocol names a setting the method lacks.
    """
    names = _unique(m.strip() for m in methods if m.strip())
    if not names:
        raise ValueError("give at least one method, e.g. kd")
    for method in names:
        known = _setting_names(method)
        for part in method.split(PLUGIN_SEPARATOR):
            for key in protocol.method_overrides.get(part, {}):
                if key not in known:
                    raise ProtocolError(
                        protocol.source,
                        f"'method_overrides.{part}.{key}' is not a setting of method "
                        f"{method!r}; its settings: {', '.join(sorted(known))}",
                    )
    return names


@dataclass(frozen=True)
class Cell:
    """One student training: a pair, a method and a seed.

    Attributes:
        pair: The pair.
        method: Method name (``kd``, ``dkd+sembridge``...).
        seed: The student's training seed.
    """

    pair: Pair
    method: str
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        """``(pair code, method, seed)``: the cell's identity within a results folder."""
        return (self.pair.code, self.method, self.seed)

    def run_dir(self, root: Path) -> Path:
        """The student run folder."""
        return root / STUDENTS_DIR / self.pair.folder / self.method / f"seed{self.seed}"

    def predictions_path(self, root: Path) -> Path:
        """The test predictions file."""
        return root / PREDICTIONS_DIR / self.pair.folder / self.method / f"seed{self.seed}.csv"

    def scores_path(self, root: Path) -> Path:
        """The evaluator's scores of the predictions."""
        return scores_path(self.predictions_path(root))


def scores_path(predictions: Path) -> Path:
    """The scores file written beside a predictions file."""
    return predictions.with_suffix(".scores.json")


def plan_cells(pairs: Iterable[Pair], methods: Iterable[str], seeds: Iterable[int]) -> list[Cell]:
    """Return every cell, pair-major, then method, then seed."""
    seed_list = list(seeds)
    return [Cell(p, m, s) for p in pairs for m in methods for s in seed_list]


def teacher_dir(root: Path, arch: str, seed: int) -> Path:
    """The teacher run folder of ``arch``."""
    return root / TEACHERS_DIR / f"{arch}-seed{seed}"


def matcher_dir(root: Path, arch: str, seed: int) -> Path:
    """The SemBridge matcher run folder."""
    return root / MATCHERS_DIR / f"{arch}-seed{seed}"
