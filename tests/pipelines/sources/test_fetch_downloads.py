"""The one download path: Hub and pooch downloads, checksums, caching, resume, offline mode."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import huggingface_hub.constants
import pytest
from fakehub import FakeHub
from pytest_httpserver import HTTPServer
from source_archives import Archive, files_in
from werkzeug import Request, Response

from msrgb_bench.errors import ChecksumMismatchError, DownloadError
from msrgb_bench.pipelines.fetch import fetch_file
from msrgb_bench.pipelines.sources import RemoteFile
from msrgb_bench.pipelines.sources.eurosat import EuroSATMS

DATA = hashlib.sha256(b"seed").digest() * 40_000  # 1.28 MB of incompressible-ish bytes
DATA_SHA256 = hashlib.sha256(DATA).hexdigest()
DATA_MD5 = hashlib.md5(DATA).hexdigest()


# --- Hub ----------------------------------------------------------------------------------------


def _ms_remote(archives: dict[str, Archive], **change: str) -> RemoteFile:
    fields = {"md5": archives["eurosat-ms"].md5, **change}
    return dataclasses.replace(EuroSATMS.files[0], **fields)


def test_hub_download_is_verified_cached_and_works_offline(
    hub: FakeHub,
    hub_online: None,
    archives: dict[str, Archive],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remote = _ms_remote(archives)
    start = len(hub.requests)
    local = fetch_file(remote, tmp_path, endpoint=hub.url, progress=False)
    assert local.path.read_bytes() == archives["eurosat-ms"].path.read_bytes()
    assert local.sha256 == archives["eurosat-ms"].sha256
    assert tmp_path / "hub" in local.path.parents
    gets = [r for r in hub.requests[start:] if r.method == "GET"]
    assert len(gets) == 1
    assert gets[0].path == (
        f"/datasets/torchgeo/eurosat/resolve/{remote.hf_revision}/EuroSATallBands.zip"
    )

    # Offline, the pinned commit is served from the cache without a request.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    seen = len(hub.requests)
    again = fetch_file(remote, tmp_path, endpoint=hub.url, progress=False)
    assert again == local
    assert len(hub.requests) == seen


def test_hub_download_resumes_after_a_dropped_connection(
    hub: FakeHub,
    hub_online: None,
    archives: dict[str, Archive],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small chunks, so that bytes reach the disk before the server drops the connection.
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    remote = _ms_remote(archives)
    cut = 3_000_000
    hub.interrupt_once(
        str(remote.hf_repo), str(remote.hf_filename), cut, revision=str(remote.hf_revision)
    )
    start = len(hub.requests)
    local = fetch_file(remote, tmp_path, endpoint=hub.url, progress=False)
    assert local.sha256 == archives["eurosat-ms"].sha256
    gets = [r for r in hub.requests[start:] if r.method == "GET"]
    assert len(gets) == 2
    assert gets[0].range is None
    assert gets[1].range is not None and gets[1].range.startswith("bytes=")
    resumed_at = int(gets[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= cut


def test_hub_checksum_mismatch_names_file_and_evicts_it(
    hub: FakeHub, hub_online: None, archives: dict[str, Archive], tmp_path: Path
) -> None:
    wrong = "0" * 32
    remote = _ms_remote(archives, md5=wrong)
    with pytest.raises(ChecksumMismatchError) as err:
        fetch_file(remote, tmp_path, endpoint=hub.url, progress=False)
    message = str(err.value)
    assert "EuroSATallBands.zip" in message
    assert f"expected md5:{wrong}" in message
    assert f"got md5:{archives['eurosat-ms'].md5}" in message
    left = [p for p in files_in(tmp_path / "hub") if {"blobs", "snapshots"} & set(p.parts)]
    assert left == []


def test_hub_offline_without_cache_is_a_clear_download_error(
    hub: FakeHub, archives: dict[str, Archive], tmp_path: Path
) -> None:
    seen = len(hub.requests)
    with pytest.raises(DownloadError) as err:
        fetch_file(_ms_remote(archives), tmp_path, endpoint=hub.url, progress=False)
    assert "EuroSATallBands.zip" in str(err.value)
    assert "--source" in str(err.value)
    assert len(hub.requests) == seen


def test_hub_unknown_revision_is_a_download_error(
    hub: FakeHub, hub_online: None, archives: dict[str, Archive], tmp_path: Path
) -> None:
    remote = _ms_remote(archives, hf_revision="f" * 40)
    with pytest.raises(DownloadError, match=r"EuroSATallBands\.zip"):
        fetch_file(remote, tmp_path, endpoint=hub.url, progress=False)


# --- pooch --------------------------------------------------------------------------------------


def _remote(httpserver: HTTPServer, **pins: str) -> RemoteFile:
    return RemoteFile(filename="blob.bin", url=httpserver.url_for("/files/blob.bin"), **pins)


def test_pooch_download_is_verified_and_cached(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/files/blob.bin").respond_with_data(DATA)
    remote = _remote(httpserver, md5=DATA_MD5)
    local = fetch_file(remote, tmp_path, progress=False)
    assert local.path == tmp_path / "downloads" / "blob.bin"
    assert local.path.read_bytes() == DATA
    assert local.sha256 == DATA_SHA256
    again = fetch_file(remote, tmp_path, progress=False)
    assert again == local
    assert len(httpserver.log) == 1  # the second call was served from the cache


def test_pooch_download_resumes_after_a_dropped_connection(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    cut = len(DATA) // 3

    def drop_midway(request: Request) -> Response:
        # Announces the whole file, sends a third, then closes the connection.
        return Response(
            iter([DATA[:cut]]),
            headers={"Content-Length": str(len(DATA)), "Connection": "close"},
        )

    def serve_range(request: Request) -> Response:
        start = int(request.headers["Range"].removeprefix("bytes=").rstrip("-"))
        return Response(
            DATA[start:],
            status=206,
            headers={"Content-Range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"},
        )

    httpserver.expect_ordered_request("/files/blob.bin").respond_with_handler(drop_midway)
    httpserver.expect_ordered_request("/files/blob.bin").respond_with_handler(serve_range)
    local = fetch_file(
        _remote(httpserver, sha256=DATA_SHA256), tmp_path, progress=False, retry_wait=0
    )
    assert local.path.read_bytes() == DATA
    first, second = (request.headers.get("Range") for request, _ in httpserver.log)
    assert first is None
    # Resumed from the bytes that reached the disk: not from zero, not past the cut.
    assert second is not None
    assert 0 < int(second.removeprefix("bytes=").rstrip("-")) <= cut
    assert files_in(tmp_path / "downloads") == [local.path]  # no .part left


def test_pooch_resumes_the_part_left_by_a_killed_run(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    half = len(DATA) // 2
    part = tmp_path / "downloads" / f".blob.bin.{DATA_SHA256[:12]}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:half])
    httpserver.expect_request(
        "/files/blob.bin", headers={"Range": f"bytes={half}-"}
    ).respond_with_data(
        DATA[half:],
        status=206,
        headers={"Content-Range": f"bytes {half}-{len(DATA) - 1}/{len(DATA)}"},
    )
    local = fetch_file(_remote(httpserver, sha256=DATA_SHA256), tmp_path, progress=False)
    assert local.path.read_bytes() == DATA
    assert not part.exists()


def test_pooch_checksum_mismatch_names_file_and_leaves_nothing(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/files/blob.bin").respond_with_data(DATA[:-1] + b"x")
    wrong_sha = hashlib.sha256(DATA[:-1] + b"x").hexdigest()
    with pytest.raises(ChecksumMismatchError) as err:
        fetch_file(_remote(httpserver, sha256=DATA_SHA256), tmp_path, progress=False)
    message = str(err.value)
    assert "blob.bin" in message
    assert f"expected sha256:{DATA_SHA256}" in message
    assert f"got sha256:{wrong_sha}" in message
    assert files_in(tmp_path / "downloads") == []


def test_pooch_http_error_is_a_download_error(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/files/blob.bin").respond_with_data("gone", status=404)
    with pytest.raises(DownloadError, match=r"blob\.bin.*404"):
        fetch_file(_remote(httpserver, sha256=DATA_SHA256), tmp_path, progress=False)
    assert files_in(tmp_path / "downloads") == []


def test_a_file_without_any_pinned_checksum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no md5 or sha256 pinned"):
        fetch_file(RemoteFile(filename="x.zip", url="http://127.0.0.1:9/x.zip"), tmp_path)
