"""The distribution installs only the ``msrgb_bench`` import name."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_claims_no_generic_top_level_name(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("msrgb_bench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"msrgb_bench", wheel.name.split("-py3")[0] + ".dist-info"}
    # The top-level folders travel inside the package.
    assert "msrgb_bench/pipelines/build.py" in names
    assert "msrgb_bench/pipelines/recipes/demo.yaml" in names
    assert "msrgb_bench/data_cards/dataset_card.md.j2" in names
    assert "msrgb_bench/baselines/__init__.py" in names
