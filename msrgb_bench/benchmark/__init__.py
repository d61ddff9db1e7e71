"""The benchmark runner: every pair x method x seed trained, scored and tabulated, resumably.

* :func:`run_benchmark` (``msrgb benchmark``) trains or reuses teachers, the SemBridge matcher
  and every student of a grid of cells, predicts the RGB test split, scores it with the
  leaderboard evaluator, and writes ``results.csv`` (one row per cell), ``summary.{md,csv,html}``
  and ``plots/`` into one results folder (layout: :mod:`msrgb_bench.benchmark.plan`).
* Protocols (:mod:`msrgb_bench.benchmark.protocol`) are named YAML files: ``paper`` (the
  released code's settings) and ``mini`` (two CPU cores), or your own file.

Names are imported on first use (``msrgb --help`` stays fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from msrgb_bench.benchmark.protocol import Protocol, list_protocols, load_protocol
    from msrgb_bench.benchmark.runner import BenchmarkReport, Execution, run_benchmark

_LAZY: dict[str, str] = {
    "BenchmarkReport": "msrgb_bench.benchmark.runner",
    "Execution": "msrgb_bench.benchmark.runner",
    "Protocol": "msrgb_bench.benchmark.protocol",
    "list_protocols": "msrgb_bench.benchmark.protocol",
    "load_protocol": "msrgb_bench.benchmark.protocol",
    "run_benchmark": "msrgb_bench.benchmark.runner",
}

__all__ = [
    "BenchmarkReport",
    "Execution",
    "Protocol",
    "list_protocols",
    "load_protocol",
    "run_benchmark",
]


def __getattr__(name: str) -> Any:
    """Import the public names on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'msrgb_bench.benchmark' has no attribute {name!r}")
