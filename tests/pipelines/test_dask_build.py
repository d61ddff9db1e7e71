"""Builds whose per-chip work runs on a Dask cluster (a local one on 127.0.0.1)."""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from msrgb_bench.cli import main
from msrgb_bench.data.manifest import read_manifest, verify_files
from msrgb_bench.errors import CorruptRasterError
from msrgb_bench.pipelines.build import BuildReport, build_dataset
from msrgb_bench.pipelines.dask_mapper import dask_chip_mapper
from msrgb_bench.sample_data import find_sample_data

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


def test_cluster_build_is_byte_identical_to_a_local_build(
    cluster: distributed.LocalCluster, tiny_demo: BuildReport, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    args = ["build-dataset", "--size", "tiny", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(main, [*args, "--dask-scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    assert "built 280 samples" in result.output
    for name in ("manifest.parquet", "dataset.json", "README.md"):
        assert (out / name).read_bytes() == (tiny_demo.out / name).read_bytes()
    verify_files(out, read_manifest(out))  # every chip the workers wrote matches its sha256
    assert not list(tmp_path.glob(".demo*"))
    # The chips were made by the cluster's workers, in several batches, all released afterwards.
    batches = cluster.scheduler.task_prefixes["run_batch"]
    assert batches.state_counts["memory"] > 1
    assert batches.states["memory"] == 0


def test_first_bad_file_in_task_order_fails_the_build_as_locally(
    cluster: distributed.LocalCluster, tmp_path: Path
) -> None:
    sample = find_sample_data()
    if sample is None:
        pytest.skip("offline sample data not found")
    folder = tmp_path / "ms"
    shutil.copytree(sample / "eurosat_ms", folder)
    for class_name in ("River", "AnnualCrop"):  # two bad files: the error must be deterministic
        victim = sorted((folder / class_name).glob("*.tif"))[3]
        victim.write_bytes(victim.read_bytes()[:5000])
    sources = {"eurosat-ms": folder, "eurosat-rgb": sample / "eurosat_rgb"}
    with pytest.raises(CorruptRasterError) as local:
        build_dataset("s2s-eu", tmp_path / "local", sources=sources, progress=False)
    out = tmp_path / "out"
    with (
        dask_chip_mapper(cluster.scheduler_address, batch_size=1) as mapper,
        pytest.raises(CorruptRasterError) as remote,
    ):
        build_dataset("s2s-eu", out, sources=sources, progress=False, mapper=mapper)
    assert type(remote.value) is CorruptRasterError
    assert remote.value.path.parent.parent == folder
    assert str(remote.value) == str(local.value)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_workers_and_scheduler_are_exclusive(tmp_path: Path) -> None:
    args = ["build-dataset", "--out", str(tmp_path / "x"), "--workers", "2"]
    result = CliRunner().invoke(main, [*args, "--dask-scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "either --dask-scheduler or --workers" in result.output
    assert not (tmp_path / "x").exists()


def test_unreachable_scheduler_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with (
        pytest.raises(ConnectionError, match=f"cannot reach the Dask scheduler at {address}"),
        dask_chip_mapper(address, timeout=1),
    ):
        pass


def test_missing_dask_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with (
        pytest.raises(ImportError, match=r'pip install "msrgb-bench\[dask\]"'),
        dask_chip_mapper("tcp://127.0.0.1:1"),
    ):
        pass
