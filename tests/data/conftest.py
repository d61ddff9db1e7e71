"""Fixtures: small dataset folders written by hand, and one made from the real sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from datafolders import (
    EUROSAT_MS_BANDS,
    REAL_CLASSES,
    Chip,
    Folder,
    handmade_chips,
    real_eurosat_chips,
    write_folder,
)

from msrgb_bench.sample_data import find_sample_data


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    """A valid single-label dataset folder."""
    return write_folder(tmp_path / "ds", handmade_chips())


@pytest.fixture
def multilabel_folder(tmp_path: Path) -> Folder:
    """A valid folder whose MS samples are multi-label."""
    return write_folder(tmp_path / "ml", handmade_chips(multilabel=True), multilabel=True)


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[..., Folder]:
    """Write a folder from chips (for tests that need to vary one thing)."""

    def make(chips: list[Chip], name: str = "custom", **kwargs: object) -> Folder:
        return write_folder(tmp_path / name, chips, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def real_folder(tmp_path_factory: pytest.TempPathFactory) -> Folder:
    """A dataset folder made from the REAL EuroSAT sample (MS tifs, RGB jpgs as PNG).

    3 classes; per class 4 MS chips (2 train, 1 val, 1 test) and 5 RGB images (3/1/1), read from
    ``../shared/data`` into a temporary folder, never into the repository.
    """
    sample = find_sample_data()
    if sample is None:
        pytest.skip("real sample data not found (set MSRGB_SAMPLE_DATA)")
    root = tmp_path_factory.mktemp("real") / "eurosat-real"
    return write_folder(
        root, real_eurosat_chips(sample), classes=REAL_CLASSES, ms_bands=EUROSAT_MS_BANDS,
        ms_size=64, rgb_size=64,
    )  # fmt: skip
