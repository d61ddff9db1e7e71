"""``benchmark.json``: what a results folder was made with, and the check that keeps it that way.

It records the protocol (and its fingerprint), the dataset (name, content hash, sizes) and one
entry per invocation (command, cells asked for, execution settings, library versions and
hardware). A later invocation into the same folder must use the same protocol fingerprint and
dataset content hash, so results of different experiments are never mixed.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from msrgb_bench.atomic import write_text_atomic
from msrgb_bench.benchmark.protocol import Protocol
from msrgb_bench.data.manifest import DatasetInfo
from msrgb_bench.errors import ResultsFolderError

BENCHMARK_JSON = "benchmark.json"
BENCHMARK_FORMAT = "msrgb-benchmark/1"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware() -> dict[str, Any]:
    """Return the CPU model and core count, and the names of the visible CUDA GPUs."""
    import torch

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {"cpu": _cpu_model(), "cpu_cores": os.cpu_count() or 0, "gpus": gpus}


def hardware_text(facts: dict[str, Any]) -> str:
    """Describe :func:`hardware`'s facts in one phrase."""
    gpus = facts.get("gpus") or []
    if gpus:
        names = sorted(set(gpus))
        return f"{len(gpus)}x GPU {', '.join(names)}"
    return f"CPU {facts.get('cpu', 'unknown')} ({facts.get('cpu_cores', '?')} cores)"


def dataset_facts(data: Path, info: DatasetInfo, manifest: pd.DataFrame) -> dict[str, Any]:
    """Return the dataset's name, content hash, class count and samples per modality/split."""
    counts = manifest.groupby(["modality", "split"]).size()
    return {
        "name": info.recipe,
        "version": info.version,
        "content_hash": info.content_hash,
        "path": str(data.resolve()),
        "classes": len(info.classes),
        "sizes": {f"{m}/{s}": int(n) for (m, s), n in sorted(counts.items())},
    }


def dataset_text(facts: dict[str, Any]) -> str:
    """Describe :func:`dataset_facts`'s facts in one phrase."""
    sizes = facts["sizes"]
    parts = []
    for modality in ("ms", "rgb"):
        split_sizes = [str(sizes.get(f"{modality}/{s}", 0)) for s in ("train", "val", "test")]
        parts.append(f"{modality.upper()} train/val/test {'/'.join(split_sizes)}")
    return (
        f"{facts['name']} (content hash {facts['content_hash'][:12]}, {facts['classes']} classes, "
        f"{'; '.join(parts)})"
    )


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_record(root: Path) -> dict[str, Any] | None:
    """Return ``root/benchmark.json``, or ``None`` if there is none.

    Raises:
        ResultsFolderError: If it is unreadable or not a benchmark record.
    """
    path = root / BENCHMARK_JSON
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFolderError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != BENCHMARK_FORMAT:
        raise ResultsFolderError(path, f"not a benchmark record (format {BENCHMARK_FORMAT})")
    return record


def check_record(root: Path, protocol: Protocol, dataset: dict[str, Any]) -> dict[str, Any] | None:
    """Check that ``root`` is empty, or holds results of this protocol and dataset.

    Returns:
        The existing record, or ``None`` for a new results folder.

    Raises:
        ResultsFolderError: If ``root`` holds other files, or results made with another
            protocol or another dataset content.
    """
    record = read_record(root)
    if record is None:
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ResultsFolderError(
                root, f"exists and holds no {BENCHMARK_JSON}; give an empty or new --out"
            )
        return None
    where = root / BENCHMARK_JSON
    theirs = record["protocol"]
    if record.get("protocol_fingerprint") != protocol.fingerprint():
        raise ResultsFolderError(
            where,
            f"these results were made with protocol {theirs.get('name')!r} "
            f"({record.get('protocol_fingerprint', '')[:12]}); this run uses {protocol.name!r} "
            f"({protocol.fingerprint()[:12]}) with other settings; use another --out",
        )
    recorded = record["dataset"]
    if recorded.get("content_hash") != dataset["content_hash"]:
        raise ResultsFolderError(
            where,
            f"these results were made on dataset {recorded.get('name')!r} with content hash "
            f"{str(recorded.get('content_hash'))[:12]}; {dataset['path']} has content hash "
            f"{dataset['content_hash'][:12]}; use another --out",
        )
    return record


def write_record(
    root: Path,
    protocol: Protocol,
    dataset: dict[str, Any],
    invocation: dict[str, Any],
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """Write ``benchmark.json`` with this invocation appended, atomically; return it."""
    from msrgb_bench.engine.runs import code_version, versions

    invocation = {
        "started": now(),
        **invocation,
        "code_version": code_version(),
        "versions": versions(),
        "hardware": hardware(),
    }
    record = {
        "format": BENCHMARK_FORMAT,
        "protocol": protocol.to_dict(),
        "protocol_fingerprint": protocol.fingerprint(),
        "protocol_source": protocol.source,
        "dataset": dataset,
        "invocations": [*(previous or {}).get("invocations", []), invocation],
    }
    write_text_atomic(root / BENCHMARK_JSON, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
