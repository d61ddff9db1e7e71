"""Fixtures: the real sample packed into each source's real archive layout, served from 127.0.0.1.

Hub-hosted archives (EuroSAT MS/RGB, UC Merced, RESISC45) are served by a :class:`FakeHub` at their
real repository, revision and file name; only the checksums are overridden (``files=``), since
the test archives hold the sample, not the full release. BigEarthNet goes through pooch and is
served by pytest-httpserver. Every test runs with ``HF_HUB_OFFLINE=1``; the tests that download
from the FakeHub lift it with the ``hub_online`` fixture (the server is on 127.0.0.1).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest

from msrgb_bench.pipelines.sources import RemoteFile, Source
from msrgb_bench.pipelines.sources.bigearthnet import BigEarthNetS2
from msrgb_bench.pipelines.sources.eurosat import EuroSATMS, EuroSATRGB
from msrgb_bench.pipelines.sources.resisc45 import RESISC45
from msrgb_bench.pipelines.sources.ucmerced import UCMerced
from msrgb_bench.sample_data import find_sample_data

# This folder holds source_archives.py; tests/ holds fakehub.py, shared by test folders.
for _folder in (Path(__file__).resolve().parent, Path(__file__).resolve().parents[2]):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))
from fakehub import FakeHub  # noqa: E402
from source_archives import Archive, make_bigearthnet_tar, make_zip  # noqa: E402


@pytest.fixture(autouse=True)
def hf_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the real Hub: offline mode everywhere (huggingface_hub reads the
    environment at import time, so its constant is set too)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture()
def hub_online(monkeypatch: pytest.MonkeyPatch, hf_offline: None) -> None:
    """Lift offline mode for a test that downloads from the FakeHub on 127.0.0.1."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture(scope="session")
def sample() -> Path:
    found = find_sample_data()
    if found is None:
        pytest.skip("the real sample data (../shared/data) is not available")
    return found


@pytest.fixture(scope="session")
def archives(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Archive]:
    """The real sample packed as each source's original archive."""
    out = tmp_path_factory.mktemp("archives")
    return {
        "eurosat-ms": make_zip(
            sample / "eurosat_ms", out / "EuroSATallBands.zip", EuroSATMS.archive_root, ".tif"
        ),
        "eurosat-rgb": make_zip(sample / "eurosat_rgb", out / "EuroSAT.zip", "2750", ".jpg"),
        "ucmerced": make_zip(
            sample / "ucmerced", out / "UCMerced_LandUse.zip", UCMerced.archive_root, ".tif"
        ),
        "resisc45": make_zip(
            sample / "resisc45", out / "NWPU-RESISC45.zip", RESISC45.archive_root, ".jpg"
        ),
        "bigearthnet-s2": make_bigearthnet_tar(
            sample / "bigearthnet_s2", out / "BigEarthNet-S2-v1.0.tar.gz"
        ),
    }


HUB_SOURCES: dict[str, type[Source]] = {
    "eurosat-ms": EuroSATMS,
    "eurosat-rgb": EuroSATRGB,
    "ucmerced": UCMerced,
    "resisc45": RESISC45,
}


@pytest.fixture(scope="session")
def hub(
    archives: dict[str, Archive], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeHub]:
    """A FakeHub serving the Hub-hosted test archives at their real repo, revision and name."""
    with FakeHub(tmp_path_factory.mktemp("fakehub")) as server:
        for name, source in HUB_SOURCES.items():
            remote = source.files[0]
            assert remote.hf_repo and remote.hf_revision and remote.hf_filename
            server.add_file(
                remote.hf_repo,
                remote.hf_filename,
                archives[name].path,
                revision=remote.hf_revision,
            )
        yield server


@pytest.fixture()
def bigearthnet_url(httpserver: object, archives: dict[str, Archive]) -> tuple[RemoteFile, ...]:
    """Serve the BigEarthNet test tar from pytest-httpserver at the release's URL path."""
    from pytest_httpserver import HTTPServer

    assert isinstance(httpserver, HTTPServer)
    remote = BigEarthNetS2.files[0]
    path = "/records/12687186/files/BigEarthNet-S2-v1.0.tar.gz"
    assert remote.url.endswith(path)
    archive = archives["bigearthnet-s2"]
    httpserver.expect_request(path).respond_with_data(
        archive.path.read_bytes(), content_type="application/gzip"
    )
    return (dataclasses.replace(remote, url=httpserver.url_for(path), md5=archive.md5),)
