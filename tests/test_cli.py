from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from msrgb_bench import __version__
from msrgb_bench.cli import main


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys; from msrgb_bench.cli import main\n"
        "names = ('torch', 'torchgeo', 'rasterio', 'pandas', 'lightning', 'geopandas')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "build-dataset" in result.output


def test_info_reports_versions_and_sample_data(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MSRGB_SAMPLE_DATA", str(tmp_path))
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0, result.output
    import rasterio
    import torch

    assert f"msrgb-bench  {__version__}" in result.output
    assert f"torch        {torch.__version__}" in result.output
    assert f"GDAL         {rasterio.__gdal_version__}" in result.output
    assert f"sample data  {tmp_path}" in result.output
    assert "device       cpu" in result.output or "device       cuda" in result.output


def test_list_commands() -> None:
    runner = CliRunner()
    recipes = runner.invoke(main, ["list-recipes"])
    assert recipes.exit_code == 0 and recipes.output.startswith("demo")
    sources = runner.invoke(main, ["list-sources"])
    assert "synthetic-ms" in sources.output and "synthetic-rgb" in sources.output


def test_build_dataset_command(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        main, ["build-dataset", "--out", str(out), "--size", "tiny", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "built 280 samples" in result.output
    assert f"wrote {out}" in result.output
    assert (out / "manifest.parquet").is_file()


def test_build_dataset_errors_are_clean(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["build-dataset", "--recipe", "nope", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1
    assert "unknown recipe 'nope'; known: demo" in bad.output
    assert "Traceback" not in bad.output
    malformed = runner.invoke(
        main, ["build-dataset", "--source", "eurosat-ms", "--out", str(tmp_path / "y")]
    )
    assert malformed.exit_code == 2 and "expected NAME=PATH" in malformed.output


def test_build_dataset_with_hidden_test_labels(tmp_path: Path) -> None:
    import pandas as pd

    out = tmp_path / "demo"
    result = CliRunner().invoke(
        main,
        ["build-dataset", "--out", str(out), "--size", "tiny", "--quiet", "--hide-test-labels"],
    )
    assert result.exit_code == 0, result.output
    public = pd.read_parquet(tmp_path / "demo-public" / "manifest.parquet")
    test = public[public["split"] == "test"]
    assert len(test) > 0 and set(test["label"]) == {-1}
    assert (public[public["split"] == "train"]["label"] >= 0).all()
    assert (tmp_path / "demo-test-labels.parquet").is_file()
