"""Helpers of the leaderboard tests: small dataset folders, submissions and live servers."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import uvicorn

from msrgb_bench.data.manifest import (
    MANIFEST_COLUMNS,
    SPLITS,
    DatasetInfo,
    content_hash,
    file_sha256,
    write_info,
    write_manifest,
)
from msrgb_bench.leaderboard.release import release_dataset
from msrgb_bench.leaderboard.schema import SubmissionMeta, sidecar_path
from msrgb_bench.leaderboard.server import ServerConfig, create_app
from msrgb_bench.leaderboard.store import Store
from msrgb_bench.leaderboard.submission import write_submission

CLASSES = ("forest", "river", "sea_lake")
COUNTS = {"train": 6, "val": 4, "test": 9}
# Size limit of the shared live server, in bytes.
SERVER_MAX_BYTES = 200_000


def make_dataset(
    root: Path,
    *,
    recipe: str = "s2s-eu",
    classes: Sequence[str] = CLASSES,
    counts: dict[str, int] | None = None,
    multilabel: bool = False,
    label_offset: int = 0,
) -> DatasetInfo:
    """Write a small dataset folder (tiny placeholder files, real manifest and dataset.json).

    Sample ids are opaque (``rgb-test-0003``); file paths name the class, as builders do.
    Labels follow ``(i + label_offset) % K``; multi-label ``ms`` rows with odd ``i`` also carry
    the next class.
    """
    counts = counts or COUNTS
    k = len(classes)
    rows = []
    for modality in ("ms", "rgb"):
        for split in SPLITS:
            for i in range(counts[split]):
                sid = f"{modality}-{split}-{i:04d}"
                label = (i + label_offset) % k
                labels = [label]
                if multilabel and modality == "ms" and i % 2 == 1:
                    labels = [label, (label + 1) % k]
                rel = f"{modality}/{split}/{classes[label]}/{sid}.tif"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(f"{sid} {label}".encode())
                rows.append(
                    {
                        "sample_id": sid,
                        "modality": modality,
                        "split": split,
                        "label": label,
                        "label_name": classes[label],
                        "labels": labels,
                        "source": f"fake-{modality}",
                        "source_path": f"Fake/{classes[label]}/{sid}.tif",
                        "path": rel,
                        "sha256": file_sha256(path),
                        "height": 8,
                        "width": 8,
                        "bands": 3 if modality == "rgb" else 10,
                        "crs": None,
                        "lon": None,
                        "lat": None,
                        "region": "nowhere",
                    }
                )
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    write_manifest(manifest, root)
    info = DatasetInfo(
        recipe=recipe,
        version="1",
        classes=tuple(classes),
        ms_bands=tuple(f"B{i}" for i in range(10)),
        rgb_bands=("R", "G", "B"),
        multilabel=multilabel,
        ms_size=8,
        rgb_size=8,
        seed=0,
        tool_version="0.1.0",
        content_hash=content_hash(manifest),
    )
    write_info(info, root)
    return info


def rgb_labels(info: DatasetInfo, split: str = "test", counts: dict[str, int] | None = None,
                label_offset: int = 0) -> tuple[list[str], np.ndarray]:  # fmt: skip
    """Return the (sample ids, labels) :func:`make_dataset` wrote for an ``rgb`` split."""
    n = (counts or COUNTS)[split]
    ids = [f"rgb-{split}-{i:04d}" for i in range(n)]
    return ids, (np.arange(n) + label_offset) % len(info.classes)


def make_meta(info: DatasetInfo, **overrides: Any) -> SubmissionMeta:
    """Return valid metadata for ``info``'s rgb test split, with ``overrides`` applied."""
    values: dict[str, Any] = {
        "dataset": info.recipe,
        "dataset_hash": info.content_hash,
        "split": "test",
        "method": "kd",
        "teacher_arch": "resnet34",
        "student_arch": "resnet34",
        "preset": "paper",
        "seed": 0,
        "config_hash": "cfg123",
        "code_version": "0.1.0",
        "checkpoint_rule": "best-val",
        "param_count": 21_000_000,
        "train_seconds": 12.5,
    }
    values.update(overrides)
    return SubmissionMeta(**values)


def write_preds(
    path: Path, ids: Sequence[str], preds: Sequence[int] | np.ndarray, meta: SubmissionMeta
) -> Path:
    """Write a single-label submission with the given predictions."""
    frame = pd.DataFrame({"sample_id": list(ids), "pred": np.asarray(preds, dtype=np.int64)})
    return write_submission(path, frame, meta)


# --- live servers -----------------------------------------------------------------------------


class LiveServer:
    """A uvicorn server running a leaderboard app in a thread on 127.0.0.1 (free port)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.app = create_app(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", lifespan="off", limit_concurrency=200)
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("leaderboard server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
        self._socket.close()

    def add_team(self, name: str) -> str:
        return Store(self.config.db).add_team(name)


@dataclass(frozen=True)
class Published:
    """A dataset released as public copy + private label file."""

    info: DatasetInfo
    full_dir: Path
    public_dir: Path
    private_labels: Path


def publish(root: Path, **dataset_kwargs: Any) -> Published:
    """Build a dataset under ``root/full`` and release it."""
    full = root / "full"
    info = make_dataset(full, **dataset_kwargs)
    public, private = root / "public", root / "private" / "labels.parquet"
    release_dataset(full, public, private)
    return Published(info, full, public, private)


@contextlib.contextmanager
def running(config: ServerConfig) -> Iterator[LiveServer]:
    """Run a leaderboard server for the duration of a ``with`` block."""
    server = LiveServer(config).start()
    try:
        yield server
    finally:
        server.stop()


def post_submission(
    server: LiveServer,
    token: str | None,
    predictions: Path,
    *,
    data: bytes | None = None,
    metadata: bytes | None = None,
    name: str | None = None,
) -> httpx.Response:
    """POST a submission (file + sidecar) the way ``msrgb submit`` does; parts can be forged."""
    files = {
        "predictions": (
            name or predictions.name,
            data if data is not None else predictions.read_bytes(),
        ),
        "metadata": (
            "meta.json",
            metadata if metadata is not None else sidecar_path(predictions).read_bytes(),
        ),
    }
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(server.url + "/api/submissions", files=files, headers=headers, timeout=120)
