"""Publish a dataset folder to the Hugging Face Hub and download it back, verified.

A published dataset repository holds exactly the folder contract: ``manifest.parquet``,
``dataset.json``, the data card as ``README.md`` (its YAML front matter, written by the builder,
declares the ``configs`` / ``data_files`` per modality and split for the Hub viewer and
``datasets.load_dataset``), the images under ``ms/`` and ``rgb/`` and, when present, the packed
arrays under ``packed/``.

A download is pinned to a revision, goes to a temporary folder beside the target, is verified
file by file against ``manifest.parquet`` and ``dataset.json``, and only then renamed into place,
so a tampered or incomplete download never leaves a folder behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from msrgb_bench.data.manifest import (
    CARD_NAME,
    INFO_NAME,
    MANIFEST_NAME,
    DatasetInfo,
    read_info,
    read_manifest,
    verify_files,
)
from msrgb_bench.data.packed import PACKED_DIR, check_content_hash, verify_packed
from msrgb_bench.errors import DownloadError, FileProblemError, ManifestError, UploadError

#: The dataset repository ``MSRGBDataset(download=True)`` and ``msrgb download`` use by default.
DEFAULT_REPO_ID = "msrgb-bench/s2s-eu"
#: The revision (tag) of :data:`DEFAULT_REPO_ID` this version of msrgb-bench is tested against.
DEFAULT_REVISION = "v0.1.0"

#: Files of a dataset folder that are published (fnmatch patterns, ``*`` crosses ``/``).
PUBLISHED_PATTERNS = [MANIFEST_NAME, INFO_NAME, CARD_NAME, "ms/*", "rgb/*", f"{PACKED_DIR}/*"]

_REPO_TYPE = "dataset"


def verify_dataset(root: str | Path, *, checksum: bool = True) -> DatasetInfo:
    """Verify a whole dataset folder: content hash, every file and every packed array.

    Args:
        root: The dataset folder.
        checksum: Hash every file (otherwise only check that each exists).

    Returns:
        The folder's ``dataset.json``.

    Raises:
        ManifestError: Naming the first file that is missing or disagrees.
    """
    root = Path(root)
    info = read_info(root)
    manifest = read_manifest(root)
    check_content_hash(root, info, manifest)
    if checksum:
        verify_files(root, manifest)
    else:
        for rel in manifest["path"]:
            if not (root / rel).is_file():
                raise ManifestError(root / rel, "listed in manifest.parquet but missing")
    verify_packed(root, checksum=checksum)
    return info


def publish(
    root: str | Path,
    repo_id: str,
    revision: str | None = None,
    private: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
) -> str:
    """Upload a verified dataset folder to a Hub dataset repository.

    The repository is created if needed (``exist_ok``); a ``revision`` other than ``main`` is
    created as a branch. Only the published files (:data:`PUBLISHED_PATTERNS`) are uploaded.

    Args:
        root: The dataset folder.
        repo_id: ``ORG/NAME`` of the dataset repository.
        revision: Branch to commit to (``main`` when ``None``).
        private: Create the repository as private.
        endpoint: Hub URL (``https://huggingface.co`` when ``None``).
        token: Access token (the logged-in user's when ``None``).

    Returns:
        The URL of the commit.

    Raises:
        ManifestError: If the folder does not verify or has no data card.
        UploadError: If the Hub refuses or cannot be reached.
    """
    from huggingface_hub import HfApi

    root = Path(root)
    info = verify_dataset(root)
    if not (root / CARD_NAME).is_file():
        raise ManifestError(
            root / CARD_NAME, "no data card; publish a folder made by msrgb build-dataset"
        )
    api = HfApi(endpoint=endpoint, token=token)
    # ValueError: huggingface_hub's answer when the Hub refuses the card's YAML front matter.
    refused: tuple[type[BaseException], ...] = (*_hub_errors(), ValueError)
    try:
        api.create_repo(repo_id, repo_type=_REPO_TYPE, private=private, exist_ok=True)
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, repo_type=_REPO_TYPE, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=root,
            repo_type=_REPO_TYPE,
            revision=revision,
            allow_patterns=PUBLISHED_PATTERNS,
            commit_message=f"msrgb publish {info.recipe} {info.version}",
            commit_description=f"content hash {info.content_hash}",
        )
    except refused as exc:
        raise UploadError(root, f"upload to {repo_id}@{revision or 'main'} failed: {exc}") from exc
    return str(getattr(commit, "commit_url", commit))


def download(
    repo_id: str,
    revision: str,
    out: str | Path,
    endpoint: str | None = None,
    token: str | None = None,
) -> Path:
    """Download a dataset repository at ``revision`` into ``out`` and verify it.

    Args:
        repo_id: ``ORG/NAME`` of the dataset repository.
        revision: Tag, branch or commit to fetch (pin a tag or commit for reproducibility).
        out: Target folder; must not exist or be empty.
        endpoint: Hub URL (``https://huggingface.co`` when ``None``).
        token: Access token, for private repositories.

    Returns:
        ``out``.

    Raises:
        FileProblemError: If ``out`` exists and is not empty.
        DownloadError: If the Hub cannot be reached, offline mode is on, or the repository or
            revision does not exist.
        ManifestError: If the download is incomplete or a file differs from the manifest;
            nothing is left at ``out``.
    """
    from huggingface_hub import snapshot_download

    out = Path(out)
    source = f"{repo_id}@{revision}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileProblemError(out, "exists and is not empty; choose another folder or remove it")
    if _offline():
        raise DownloadError(
            out,
            f"cannot download {source}: HF_HUB_OFFLINE is set. Unset it, or use a folder that "
            "already holds the dataset",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.download-", dir=out.parent))
    try:
        try:
            snapshot_download(
                repo_id,
                repo_type=_REPO_TYPE,
                revision=revision,
                local_dir=staging,
                allow_patterns=PUBLISHED_PATTERNS,
                endpoint=endpoint,
                token=token,
            )
        except _hub_errors() as exc:
            raise DownloadError(out, f"cannot download {source}: {exc}") from exc
        shutil.rmtree(staging / ".cache", ignore_errors=True)
        try:
            verify_dataset(staging)
        except FileProblemError as exc:
            where = exc.path.relative_to(staging) if exc.path.is_relative_to(staging) else exc.path
            raise type(exc)(
                f"{source}/{where}", f"{exc.problem}; download refused, nothing written to {out}"
            ) from exc
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or flag in {"1", "ON", "YES", "TRUE"}


def _hub_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import EntryNotFoundError, HTTPError

    return (HTTPError, EntryNotFoundError, OSError)
