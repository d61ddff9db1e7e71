from __future__ import annotations

from pathlib import Path

import pytest

from msrgb_bench.pipelines.build import BuildReport, build_dataset


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> BuildReport:
    """The demo recipe at its smallest size, built once per session."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    return build_dataset("demo", out, size="tiny", progress=False)


@pytest.fixture()
def recipe_file(tmp_path: Path):
    """Write a recipe YAML (a dict) into tmp_path and return its path."""
    import yaml

    def write(data: dict, name: str = "custom.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write
