"""The FakeHub answers huggingface_hub's own client like the Hub does."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fakehub import FakeHub
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

COMMIT = "a" * 40
LATER = "b" * 40


@pytest.fixture()
def small_hub(tmp_path: Path, hub_online: None):
    with FakeHub(tmp_path / "hub") as hub:
        hub.add_file("org/data", "README.md", b"# data\n", revision=COMMIT)
        hub.add_file("org/data", "files/x.bin", b"\x00" * 1000, revision=COMMIT)
        hub.add_file("org/data", "files/x.bin", b"\x01" * 2000, revision=LATER)
        yield hub


def test_repo_info_lists_siblings_at_a_revision(small_hub: FakeHub) -> None:
    api = HfApi(endpoint=small_hub.url)
    info = api.dataset_info("org/data", revision=COMMIT)
    assert info.id == "org/data"
    assert info.sha == COMMIT
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == {"README.md", "files/x.bin"}
    assert siblings["files/x.bin"].size == 1000
    assert siblings["files/x.bin"].lfs is not None
    assert siblings["files/x.bin"].lfs.sha256 == hashlib.sha256(b"\x00" * 1000).hexdigest()
    assert api.dataset_info("org/data").sha == LATER  # main follows the last add_file


def test_downloads_by_commit_and_by_branch(small_hub: FakeHub, tmp_path: Path) -> None:
    old = hf_hub_download(
        "org/data", "files/x.bin", repo_type="dataset", revision=COMMIT,
        endpoint=small_hub.url, cache_dir=tmp_path / "cache",
    )  # fmt: skip
    new = hf_hub_download(
        "org/data", "files/x.bin", repo_type="dataset", revision="main",
        endpoint=small_hub.url, cache_dir=tmp_path / "cache",
    )  # fmt: skip
    assert Path(old).read_bytes() == b"\x00" * 1000
    assert Path(new).read_bytes() == b"\x01" * 2000
    assert f"snapshots/{LATER}/files/x.bin" in Path(new).as_posix()
    heads = [r for r in small_hub.requests if r.method == "HEAD"]
    assert len(heads) == 2


@pytest.mark.parametrize(
    ("repo", "revision", "filename", "error"),
    [
        ("org/nothing", COMMIT, "README.md", RepositoryNotFoundError),
        ("org/data", "c" * 40, "README.md", RevisionNotFoundError),
        ("org/data", COMMIT, "missing.txt", RemoteEntryNotFoundError),
    ],
)
def test_missing_repo_revision_and_file_map_to_the_hub_errors(
    small_hub: FakeHub, tmp_path: Path, repo: str, revision: str, filename: str, error: type
) -> None:
    with pytest.raises(error):
        hf_hub_download(
            repo, filename, repo_type="dataset", revision=revision,
            endpoint=small_hub.url, cache_dir=tmp_path / "cache",
        )  # fmt: skip
