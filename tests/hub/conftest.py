"""Fixtures: a FakeHub on 127.0.0.1 and small dataset folders with a data card.

The real ``huggingface_hub`` client talks to the FakeHub through ``endpoint=``; nothing reaches
the network. Offline mode is lifted explicitly (the server is local) and put back after each test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
import yaml

# tests/ holds fakehub.py; tests/data holds the hand-made dataset folder writer.
for _folder in (Path(__file__).resolve().parents[1], Path(__file__).resolve().parents[1] / "data"):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))
from datafolders import Folder, handmade_chips, write_folder  # noqa: E402
from fakehub import FakeHub  # noqa: E402


def write_card(folder: Folder) -> None:
    """A data card with the Hub's YAML front matter, as the builder writes it."""
    configs = [
        {
            "config_name": modality,
            "data_files": [
                {"split": "validation" if s == "val" else s, "path": f"{modality}/{s}/*/*.{ext}"}
                for s in ("train", "val", "test")
            ],
        }
        for modality, ext in (("ms", "tif"), ("rgb", "png"))
    ]
    meta = {"license": "mit", "task_categories": ["image-classification"], "configs": configs}
    text = f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n# handmade test dataset\n"
    (folder.root / "README.md").write_text(text, encoding="utf-8")


@pytest.fixture
def dataset(tmp_path: Path) -> Folder:
    """A valid dataset folder with its card."""
    folder = write_folder(tmp_path / "local" / "ds", handmade_chips())
    write_card(folder)
    return folder


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lift offline mode for a test that talks to the FakeHub on 127.0.0.1."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture
def fakehub(tmp_path: Path, online: None) -> Iterator[FakeHub]:
    """A running FakeHub."""
    with FakeHub(tmp_path / "hub") as hub:
        yield hub
