"""Publish and download through the real huggingface_hub client against a FakeHub."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from datafolders import Folder
from fakehub import FakeHub

from msrgb_bench import hub
from msrgb_bench.cli import main
from msrgb_bench.data.dataset import MSRGBDataset
from msrgb_bench.data.packed import pack_dataset
from msrgb_bench.errors import DownloadError, FileProblemError, ManifestError, UploadError

REPO = "org/handmade"


def published_files(root: Path) -> dict[str, bytes]:
    keep = ("manifest.parquet", "dataset.json", "README.md", "ms/", "rgb/", "packed/")
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix().startswith(keep)
    }


def server_files(fakehub: FakeHub, revision: str) -> dict[str, bytes]:
    commit = fakehub.resolve_commit(REPO, revision)
    assert commit is not None
    folder = fakehub.repo_dir(REPO) / "commits" / commit
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_publish_then_download_round_trip(
    dataset: Folder, fakehub: FakeHub, tmp_path: Path
) -> None:
    pack_dataset(dataset.root)
    url = hub.publish(dataset.root, REPO, private=True, endpoint=fakehub.url, token="hf_test")
    commit = fakehub.resolve_commit(REPO, "main")
    assert url == f"{fakehub.url}/datasets/{REPO}/commit/{commit}"
    assert fakehub.created[REPO]["type"] == "dataset"
    assert fakehub.created[REPO]["visibility"] == "private"
    local = published_files(dataset.root)
    assert {"README.md", "manifest.parquet", "dataset.json", "packed/ms-train.npy"} <= set(local)
    on_server = server_files(fakehub, "main")
    assert on_server == {**local, ".gitattributes": on_server[".gitattributes"]}

    out = hub.download(REPO, commit, tmp_path / "got" / "ds", endpoint=fakehub.url, token="hf_test")
    assert published_files(out) == local
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["README.md", "dataset.json", "manifest.parquet", "ms", "packed", "rgb"]
    )  # no .cache, no .gitattributes
    assert leftovers(out.parent) == []
    got = MSRGBDataset(out, "train", "ms", checksum=True)
    assert got.is_packed
    assert torch.equal(got[0]["image"], MSRGBDataset(dataset.root, "train", "ms")[0]["image"])


def test_publish_to_a_branch(dataset: Folder, fakehub: FakeHub, tmp_path: Path) -> None:
    hub.publish(dataset.root, REPO, revision="v1", endpoint=fakehub.url, token="hf_test")
    assert "manifest.parquet" in server_files(fakehub, "v1")
    assert set(server_files(fakehub, "main")) == {".gitattributes"}
    hub.download(REPO, "v1", tmp_path / "v1", endpoint=fakehub.url)
    # main holds no dataset: an incomplete download is refused and leaves nothing.
    with pytest.raises(
        ManifestError, match=re.escape(f"{REPO}@main/dataset.json: no dataset.json")
    ):
        hub.download(REPO, "main", tmp_path / "main", endpoint=fakehub.url)
    assert not (tmp_path / "main").exists() and leftovers(tmp_path) == []
    # Publishing the same folder again to the branch is a no-op for the data.
    hub.publish(dataset.root, REPO, revision="v1", endpoint=fakehub.url, token="hf_test")
    assert published_files(dataset.root) == {
        k: v for k, v in server_files(fakehub, "v1").items() if k != ".gitattributes"
    }


def test_publish_refuses_a_broken_folder(dataset: Folder, fakehub: FakeHub) -> None:
    (dataset.root / "ms/val/River/ms-val-river-0.tif").write_bytes(b"II*\x00 not a tif")
    with pytest.raises(ManifestError, match=r"ms-val-river-0\.tif: sha256 .* differs"):
        hub.publish(dataset.root, REPO, endpoint=fakehub.url, token="hf_test")
    assert fakehub.requests == []


def test_publish_needs_the_card(dataset: Folder, fakehub: FakeHub) -> None:
    (dataset.root / "README.md").unlink()
    with pytest.raises(ManifestError, match=r"README\.md: no data card"):
        hub.publish(dataset.root, REPO, endpoint=fakehub.url, token="hf_test")


def test_publish_refused_by_the_server(dataset: Folder, fakehub: FakeHub) -> None:
    (dataset.root / "README.md").write_text("---\nlicense: [unclosed\n---\n# card\n")
    with pytest.raises(UploadError, match="upload to org/handmade@main failed"):
        hub.publish(dataset.root, REPO, endpoint=fakehub.url, token="hf_test")


@pytest.fixture
def published(dataset: Folder, fakehub: FakeHub) -> str:
    pack_dataset(dataset.root)
    hub.publish(dataset.root, REPO, endpoint=fakehub.url, token="hf_test")
    commit = fakehub.resolve_commit(REPO, "main")
    assert commit is not None
    return commit


def test_corrupted_file_on_the_server_is_refused(
    published: str, fakehub: FakeHub, tmp_path: Path
) -> None:
    rel = "rgb/train/River/rgb-train-river-2.png"
    stored = fakehub.repo_dir(REPO) / "commits" / published / rel
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit; the server's ETag follows the bad bytes
    stored.write_bytes(bytes(data))
    message = re.escape(f"{REPO}@main/{rel}: sha256 ") + ".*download refused, nothing written"
    with pytest.raises(ManifestError, match=message):
        hub.download(REPO, "main", tmp_path / "out", endpoint=fakehub.url)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_tampered_packed_array_is_refused(published: str, fakehub: FakeHub, tmp_path: Path) -> None:
    stored = fakehub.repo_dir(REPO) / "commits" / published / "packed/rgb-val.npy"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(
        ManifestError, match=r"packed/rgb-val\.npy: sha256 .* differs from its index"
    ):
        hub.download(REPO, "main", tmp_path / "out", endpoint=fakehub.url)
    assert not (tmp_path / "out").exists()


def test_missing_file_on_the_server_is_refused(
    published: str, fakehub: FakeHub, tmp_path: Path
) -> None:
    rel = "ms/test/SeaLake/ms-test-sealake-0.tif"
    (fakehub.repo_dir(REPO) / "commits" / published / rel).unlink()
    with pytest.raises(ManifestError, match=re.escape(f"{rel}: listed in manifest.parquet")):
        hub.download(REPO, "main", tmp_path / "out", endpoint=fakehub.url)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_interrupted_transfer_is_resumed_and_verified(
    published: str, fakehub: FakeHub, tmp_path: Path, dataset: Folder
) -> None:
    fakehub.interrupt_once(REPO, "packed/ms-train.npy", 1000, revision=published)
    out = hub.download(REPO, published, tmp_path / "out", endpoint=fakehub.url)
    gets = [r for r in fakehub.requests if r.method == "GET" and r.path.endswith("ms-train.npy")]
    assert len(gets) == 2  # dropped after 1000 bytes, then fetched again by the client
    assert (out / "packed/ms-train.npy").read_bytes() == (
        dataset.root / "packed/ms-train.npy"
    ).read_bytes()


def test_unreachable_or_unknown_hub_is_a_clean_error(
    published: str, fakehub: FakeHub, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match="cannot download org/nothing@main"):
        hub.download("org/nothing", "main", tmp_path / "a", endpoint=fakehub.url)
    with pytest.raises(DownloadError, match="cannot download org/handmade@v9"):
        hub.download(REPO, "v9", tmp_path / "b", endpoint=fakehub.url)
    url = fakehub.url
    fakehub.stop()
    with pytest.raises(DownloadError, match="cannot download org/handmade@main"):
        hub.download(REPO, "main", tmp_path / "c", endpoint=url)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub", "local"]


def test_download_into_a_non_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(FileProblemError, match="exists and is not empty"):
        hub.download(REPO, "main", tmp_path / "out")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_offline_mode_refuses_without_a_request(
    published: str,
    fakehub: FakeHub,
    tmp_path: Path,
    dataset: Folder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = len(fakehub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE is set"):
        hub.download(REPO, "main", tmp_path / "out", endpoint=fakehub.url)
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE is set"):
        MSRGBDataset(tmp_path / "fresh", download=True, repo_id=REPO, endpoint=fakehub.url)
    # A folder that holds the dataset needs no network, download=True or not.
    assert len(MSRGBDataset(dataset.root, "val", "rgb", download=True)) == 3
    assert len(fakehub.requests) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub", "local"]


def test_torchgeo_dataset_downloads_once(published: str, fakehub: FakeHub, tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    ds = MSRGBDataset(
        root, "test", "rgb", download=True, repo_id=REPO, revision=published, endpoint=fakehub.url
    )
    assert len(ds) == 3 and ds.is_packed
    before = len(fakehub.requests)
    MSRGBDataset(root, "train", "ms", download=True, repo_id=REPO, endpoint=fakehub.url)
    assert len(fakehub.requests) == before


def test_cli_publish_and_download(dataset: Folder, fakehub: FakeHub, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["publish", str(dataset.root), "--repo-id", REPO, "--revision", "v2",
               "--private", "--endpoint", fakehub.url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"published {dataset.root} to {REPO}@v2: {fakehub.url}/datasets/{REPO}/commit/" in (
        result.output
    )
    out = tmp_path / "cli-out"
    result = runner.invoke(
        main, ["download", "--repo-id", REPO, "--revision", "v2", "--out", str(out),
               "--endpoint", fakehub.url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"downloaded {REPO}@v2 to {out} (verified)" in result.output
    assert published_files(out) == published_files(dataset.root)
    result = runner.invoke(
        main, ["download", "--repo-id", REPO, "--revision", "v2", "--out", str(out),
               "--endpoint", fakehub.url],
    )  # fmt: skip
    assert result.exit_code == 1 and "exists and is not empty" in result.output
    assert "--endpoint" not in runner.invoke(main, ["download", "--help"]).output


def test_cli_download_defaults_come_from_hub_module(
    dataset: Folder, fakehub: FakeHub, tmp_path: Path
) -> None:
    fakehub.stop()
    with FakeHub(tmp_path / "default-hub") as mirror:
        hub.publish(
            dataset.root, hub.DEFAULT_REPO_ID, revision=hub.DEFAULT_REVISION,
            endpoint=mirror.url, token="hf_test",
        )  # fmt: skip
        out = tmp_path / "default"
        result = CliRunner().invoke(main, ["download", "--out", str(out), "--endpoint", mirror.url])
        assert result.exit_code == 0, result.output
        assert f"downloaded {hub.DEFAULT_REPO_ID}@{hub.DEFAULT_REVISION}" in result.output
