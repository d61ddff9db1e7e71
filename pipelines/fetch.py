"""The one download path: pinned files fetched, cached, resumed, checksum-verified and unpacked.

* Files hosted on the Hugging Face Hub (``RemoteFile.hf_repo`` set) go through
  :func:`huggingface_hub.hf_hub_download`, pinned to a commit, with the Hub's own cache and
  progress bar. It resumes a dropped connection with HTTP ``Range`` within the call; recent
  huggingface_hub releases (2.x) discard a killed process's partial file, so that one restarts.
* Everything else goes through :func:`pooch.retrieve` with a :class:`ResumableDownloader`, which
  keeps a ``.part`` file in the cache and continues it with HTTP ``Range`` requests, both after a
  dropped connection (retried at once) and after a killed process (on the next run).

Every file is checked against its pinned checksum (sha256 and/or md5, and the size where pinned).
A mismatch raises :class:`~msrgb_bench.errors.ChecksumMismatchError` naming the file, the expected
and the actual value, and the bad file is removed from the cache.

Archives (zip, tar, tar.gz/bz2/xz) are unpacked by :func:`extract_archive` into a temporary
folder that is renamed into place only once complete, after every member has been checked: an
absolute path, a ``..`` component or a link pointing outside the target folder raises
:class:`~msrgb_bench.errors.UnsafeArchiveError`.

Cache layout (``cache_dir``, by default ``$MSRGB_CACHE`` or ``~/.cache/msrgb-bench``)::

    hub/                          huggingface_hub cache (blobs, snapshots)
    downloads/<file>              pooch downloads (and ``.<file>.<hash>.part`` while incomplete)
    extracted/<source>/<stem>-<sha256[:16]>/   unpacked archives
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Any

from tqdm.auto import tqdm

from msrgb_bench.errors import (
    ChecksumMismatchError,
    CorruptArchiveError,
    DownloadError,
    UnsafeArchiveError,
)
from msrgb_bench.pipelines.sources.base import RemoteFile

logger = logging.getLogger(__name__)

CACHE_ENV = "MSRGB_CACHE"
CHUNK = 1 << 20  # read size for hashing
DOWNLOAD_CHUNK = 1 << 16  # small enough that a dropped connection loses little
ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".tar", ".zip")


def default_cache_dir() -> Path:
    """Return ``$MSRGB_CACHE`` or ``~/.cache/msrgb-bench``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "msrgb-bench")).expanduser()


@dataclass(frozen=True)
class LocalFile:
    """A verified local copy of a pinned file.

    Attributes:
        path: Where the file is.
        sha256: Its sha256 (hex), for provenance.
    """

    path: Path
    sha256: str


# --- checksums --------------------------------------------------------------------------------


def file_digests(path: str | Path, algorithms: Iterable[str] = ("md5", "sha256")) -> dict[str, str]:
    """Return the hex digests of a file for several algorithms, in one pass over its bytes."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            for hasher in hashers.values():
                hasher.update(block)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def pinned_hashes(remote: RemoteFile) -> dict[str, str]:
    """Return ``{algorithm: hex}`` of every checksum pinned for ``remote`` (sha256 first)."""
    pins: dict[str, str] = {}
    if remote.sha256:
        pins["sha256"] = remote.sha256.lower()
    if remote.md5:
        pins["md5"] = remote.md5.lower()
    return pins


def _require_pins(remote: RemoteFile) -> dict[str, str]:
    pins = pinned_hashes(remote)
    if not pins:
        raise ValueError(
            f"{remote.filename}: no md5 or sha256 pinned; refusing an unverifiable download"
        )
    return pins


def verify_file(path: str | Path, remote: RemoteFile) -> str:
    """Check a local file against the size and every checksum pinned for ``remote``.

    Args:
        path: The local file.
        remote: The pinned description it must match.

    Returns:
        The file's sha256 (hex).

    Raises:
        ChecksumMismatchError: Naming the file, the expected and the actual value.
    """
    path = Path(path)
    pins = _require_pins(remote)
    if remote.size is not None:
        size = path.stat().st_size
        if size != remote.size:
            raise ChecksumMismatchError(
                path,
                f"checksum mismatch for {remote.filename}: "
                f"expected {remote.size} bytes, got {size}",
            )
    digests = file_digests(path, {"sha256", *pins})
    for algorithm, expected in pins.items():
        if digests[algorithm] != expected:
            raise ChecksumMismatchError(
                path,
                f"checksum mismatch for {remote.filename}: expected {algorithm}:{expected}, "
                f"got {algorithm}:{digests[algorithm]}",
            )
    return digests["sha256"]


def match_archive(path: str | Path, files: Sequence[RemoteFile]) -> tuple[RemoteFile | None, str]:
    """Identify a user-supplied archive among a source's pinned files by its checksums.

    Only an exact match is accepted. A source that pins no file (no public download) accepts
    any archive, unverified.

    Args:
        path: The archive the user pointed at.
        files: The source's pinned files.

    Returns:
        The matching pinned file (``None`` if nothing is pinned) and the archive's sha256.

    Raises:
        ChecksumMismatchError: If the archive matches none of the pinned files.
    """
    path = Path(path)
    digests = file_digests(path)
    if not files:
        logger.warning(
            "%s: no checksum is pinned for this source, so the archive is not verified", path
        )
        return None, digests["sha256"]
    size = path.stat().st_size
    for remote in files:
        pins = pinned_hashes(remote)
        if pins and all(digests[a] == h for a, h in pins.items()) and remote.size in (None, size):
            return remote, digests["sha256"]
    expected = "; ".join(
        f"{r.filename} " + " ".join(f"{a}:{h}" for a, h in pinned_hashes(r).items()) for r in files
    )
    raise ChecksumMismatchError(
        path,
        f"checksum mismatch: expected {expected}; "
        f"got md5:{digests['md5']} sha256:{digests['sha256']}. An archive with other contents "
        "is refused; pass the original archive, or its extracted folder",
    )


def tree_sha256(folder: str | Path) -> str:
    """Return one sha256 for a folder: the sha256 of its ``sha256sum`` listing.

    The listing holds one ``<sha256>  <relative/path>`` line per regular file (hidden files and
    folders excluded), sorted by path, the same as
    ``find . -type f -not -path '*/.*' | cut -c3- | LC_ALL=C sort | xargs sha256sum | sha256sum``.
    """
    folder = Path(folder)
    rels = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    listing = hashlib.sha256()
    for rel in rels:
        digest = file_digests(folder / rel, ("sha256",))["sha256"]
        listing.update(f"{digest}  {rel}\n".encode())
    return listing.hexdigest()


# --- downloads --------------------------------------------------------------------------------


def fetch_file(
    remote: RemoteFile,
    cache_dir: str | Path,
    *,
    endpoint: str | None = None,
    progress: bool = True,
    retries: int = 3,
    retry_wait: float = 1.0,
) -> LocalFile:
    """Download one pinned file into the cache (or find it there) and verify it.

    Args:
        remote: The pinned file. Hub-hosted when ``remote.hf_repo`` is set.
        cache_dir: Cache root (see the module docstring for its layout).
        endpoint: Hugging Face Hub endpoint (``None``: ``$HF_ENDPOINT`` or huggingface.co).
        progress: Show progress bars.
        retries: Times a dropped non-Hub download is resumed before giving up.
        retry_wait: Seconds before the first retry (doubled at each further one).

    Returns:
        The verified local file and its sha256.

    Raises:
        ChecksumMismatchError: The file differs from its pin (it is removed from the cache).
        DownloadError: The file could not be obtained.
    """
    cache_dir = Path(cache_dir)
    pins = _require_pins(remote)
    if remote.hf_repo:
        path = _fetch_from_hub(remote, cache_dir / "hub", endpoint, progress)
        try:
            return LocalFile(path, verify_file(path, remote))
        except ChecksumMismatchError:
            _evict_hub_file(path)
            raise
    path = _fetch_with_pooch(remote, cache_dir / "downloads", progress, retries, retry_wait)
    sha256 = pins.get("sha256") or file_digests(path, ("sha256",))["sha256"]
    return LocalFile(path, sha256)


class _QuietTqdm(tqdm):
    """A progress bar that never shows (huggingface_hub takes a tqdm class, not a flag)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def _fetch_from_hub(
    remote: RemoteFile, hub_cache: Path, endpoint: str | None, progress: bool
) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    filename = remote.hf_filename or remote.filename
    try:
        return Path(
            hf_hub_download(
                repo_id=str(remote.hf_repo),
                filename=filename,
                repo_type="dataset",
                revision=remote.hf_revision,
                endpoint=endpoint,
                cache_dir=hub_cache,
                tqdm_class=None if progress else _QuietTqdm,
            )
        )
    except (OSError, EntryNotFoundError) as exc:
        where = f"{endpoint or 'the Hub'}: dataset {remote.hf_repo}@{remote.hf_revision}/{filename}"
        raise DownloadError(
            remote.filename,
            f"download failed ({where}: {type(exc).__name__}: {exc}). "
            "Download it yourself and pass --source NAME=PATH",
        ) from exc


def _evict_hub_file(pointer: Path) -> None:
    """Remove a bad Hub download from the cache: its snapshot entry and the blob behind it."""
    blob = pointer.resolve()
    pointer.unlink(missing_ok=True)
    if blob != pointer:
        blob.unlink(missing_ok=True)


def _fetch_with_pooch(
    remote: RemoteFile, folder: Path, progress: bool, retries: int, retry_wait: float
) -> Path:
    import pooch

    algorithm, expected = next(iter(pinned_hashes(remote).items()))
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{remote.filename}.{expected[:12]}.part"
    downloader = ResumableDownloader(
        remote, part, progress=progress, retries=retries, retry_wait=retry_wait
    )
    try:
        return Path(
            pooch.retrieve(
                remote.url,
                known_hash=f"{algorithm}:{expected}",
                fname=remote.filename,
                path=folder,
                downloader=downloader,
                progressbar=progress,
            )
        )
    except ValueError as exc:  # pooch's own hash check (after ours passed: a concurrent writer)
        raise ChecksumMismatchError(folder / remote.filename, str(exc)) from exc


class ResumableDownloader:
    """A pooch downloader that resumes interrupted transfers with HTTP ``Range`` requests.

    Bytes go to a ``.part`` file beside the cached file. After a dropped connection the transfer
    continues from the part's size (up to ``retries`` times); after a killed process the next
    run does the same. The finished part is verified against every pin of ``remote`` before it
    is handed to pooch (which checks it again and moves it into place).

    Args:
        remote: The pinned file being downloaded.
        part: Path of the partial file.
        progress: Show a tqdm progress bar.
        retries: Resumptions allowed after a dropped connection or timeout.
        retry_wait: Seconds before the first retry, doubled after each.
        timeout: Seconds to wait for the server to answer or send more bytes.
    """

    def __init__(
        self,
        remote: RemoteFile,
        part: Path,
        *,
        progress: bool = True,
        retries: int = 3,
        retry_wait: float = 1.0,
        timeout: float = 60.0,
    ) -> None:
        self.remote = remote
        self.part = part
        self.progress = progress
        self.retries = retries
        self.retry_wait = retry_wait
        self.timeout = timeout

    def __call__(
        self, url: str, output_file: str | IO[bytes], pooch: Any, check_only: bool = False
    ) -> bool | None:
        """Download ``url`` into ``output_file`` (pooch's downloader protocol).

        Raises:
            DownloadError: The server refused, or the connection kept dropping.
            ChecksumMismatchError: The complete file differs from its pin (the part is removed).
        """
        import requests

        if check_only:
            head = requests.head(url, timeout=self.timeout, allow_redirects=True)
            return bool(head.status_code == 200)
        wait = self.retry_wait
        for attempt in range(self.retries + 1):
            try:
                self._transfer(url)
                break
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                if attempt == self.retries:
                    raise DownloadError(
                        self.remote.filename,
                        f"download from {url} dropped {attempt + 1} times ({exc}); "
                        f"{self.part} is kept and the next run resumes it",
                    ) from exc
                have = self.part.stat().st_size if self.part.exists() else 0
                logger.warning(
                    "%s: connection dropped after %d bytes (%s); resuming in %.1f s",
                    self.remote.filename,
                    have,
                    exc,
                    wait,
                )
                time.sleep(wait)
                wait *= 2
            except requests.HTTPError as exc:
                raise DownloadError(
                    self.remote.filename, f"download from {url} failed: {exc}"
                ) from exc
        try:
            verify_file(self.part, self.remote)
        except ChecksumMismatchError as exc:
            self.part.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                self.part.with_name(self.remote.filename), exc.problem
            ) from None
        if isinstance(output_file, (str, os.PathLike)):
            os.replace(self.part, output_file)
        else:
            with open(self.part, "rb") as handle:
                shutil.copyfileobj(handle, output_file)
            self.part.unlink()
        return None

    def _transfer(self, url: str) -> None:
        import requests

        have = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if have and response.status_code == 416:
                return  # the part is already complete (a killed run finished the transfer)
            response.raise_for_status()
            content_range = response.headers.get("Content-Range", "")
            if have and not (
                response.status_code == 206 and content_range.startswith(f"bytes {have}-")
            ):
                have = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with (
                open(self.part, "ab" if have else "wb") as handle,
                tqdm(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=self.remote.filename,
                    disable=not self.progress,
                ) as bar,
            ):
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    handle.write(chunk)
                    bar.update(len(chunk))


# --- archives ---------------------------------------------------------------------------------


def archive_stem(name: str) -> str:
    """Return an archive's file name without its archive suffix (``a.tar.gz`` -> ``a``)."""
    lower = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_archive(path: str | Path) -> bool:
    """Return whether ``path`` is a zip or tar archive (by its content, not its name)."""
    path = Path(path)
    return path.is_file() and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))


def extract_archive(archive: str | Path, target: str | Path, *, progress: bool = True) -> Path:
    """Unpack a zip or tar archive into ``target``, safely and all-or-nothing.

    Every member is checked before it is written. The archive is unpacked into a temporary
    sibling folder that is renamed onto ``target`` only when complete, so ``target`` exists only
    after a full extraction; leftovers of an interrupted run are removed and the work redone. An
    existing ``target`` is returned as is.

    Args:
        archive: The zip, tar, tar.gz, tar.bz2 or tar.xz file.
        target: Folder to create.
        progress: Show a progress bar.

    Returns:
        ``target``.

    Raises:
        UnsafeArchiveError: A member has an absolute path, a ``..`` component, or is a link
            pointing outside ``target`` (or is a device file); names the archive and the member.
        CorruptArchiveError: The archive cannot be read.
    """
    archive, target = Path(archive), Path(target)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    )
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging, progress)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, staging, progress)
        else:
            raise CorruptArchiveError(archive, "not a zip or tar archive")
        try:
            os.replace(staging, target)
        except OSError:
            if not target.is_dir():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def check_member(
    archive: Path, name: str, link: str | None = None, *, hardlink: bool = False
) -> None:
    """Refuse an archive member that would be written (or point) outside the target folder.

    Args:
        archive: The archive, for the error message.
        name: The member's path inside the archive.
        link: The member's link target, if it is a symbolic or hard link.
        hardlink: ``link`` is a hard link (relative to the archive root, not to the member).

    Raises:
        UnsafeArchiveError: Naming the archive and the member.
    """
    posix = name.replace("\\", "/")
    if posix.startswith("/") or PureWindowsPath(name).drive:
        raise UnsafeArchiveError(archive, f"entry {name!r} has an absolute path")
    if ".." in PurePosixPath(posix).parts:
        raise UnsafeArchiveError(archive, f"entry {name!r} escapes the target folder through '..'")
    if link is None:
        return
    link_posix = link.replace("\\", "/")
    if link_posix.startswith("/") or PureWindowsPath(link).drive:
        raise UnsafeArchiveError(archive, f"entry {name!r} links to the absolute path {link!r}")
    base = "" if hardlink else posixpath.dirname(posix)
    resolved = posixpath.normpath(posixpath.join(base, link_posix))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(
            archive, f"entry {name!r} links outside the target folder ({link!r})"
        )


def _extract_zip(archive: Path, staging: Path, progress: bool) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                link = None
                if stat.S_ISLNK(info.external_attr >> 16):
                    link = zf.read(info).decode("utf-8", "replace")
                check_member(archive, info.filename, link)
            for info in tqdm(
                members, desc=f"extract {archive.name}", unit=" files", disable=not progress
            ):
                zf.extract(info, staging)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise CorruptArchiveError(archive, f"cannot read the zip archive ({exc})") from exc


def _extract_tar(archive: Path, staging: Path, progress: bool) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tqdm(
                tf, desc=f"extract {archive.name}", unit=" files", disable=not progress
            ):
                link = member.linkname if (member.issym() or member.islnk()) else None
                check_member(archive, member.name, link, hardlink=member.islnk())
                try:
                    # The "data" filter is a second line of defence (symlink chains, device files).
                    tf.extract(member, staging, filter="data")
                except tarfile.FilterError as exc:
                    raise UnsafeArchiveError(
                        archive, f"entry {member.name!r} refused: {exc}"
                    ) from exc
    except (
        tarfile.ReadError,
        tarfile.CompressionError,
        EOFError,
        zlib.error,
        gzip.BadGzipFile,
        lzma.LZMAError,
    ) as exc:
        raise CorruptArchiveError(archive, f"cannot read the tar archive ({exc})") from exc
