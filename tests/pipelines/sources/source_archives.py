"""Helpers for the source tests: pack the real sample into each source's original archive layout."""

from __future__ import annotations

import dataclasses
import hashlib
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from msrgb_bench.pipelines.sources import RemoteFile, Source


@dataclass(frozen=True)
class Archive:
    """A test archive and its checksums (computed here with hashlib)."""

    path: Path
    md5: str
    sha256: str


def digests(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()


def make_zip(folder: Path, out: Path, prefix: str, suffix: str) -> Archive:
    """Zip ``folder/<class>/*<suffix>`` as ``<prefix>/<class>/<file>`` (the release's layout)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(folder.glob(f"*/*{suffix}")):
            zf.write(path, f"{prefix}/{path.parent.name}/{path.name}")
    return Archive(out, *digests(out))


def make_bigearthnet_tar(folder: Path, out: Path) -> Archive:
    """Tar+gzip every patch folder as ``BigEarthNet-v1.0/<patch>/...`` (the release's layout)."""
    with tarfile.open(out, "w:gz", compresslevel=1) as tf:
        for patch in sorted(p for p in folder.iterdir() if p.is_dir()):
            tf.add(patch, arcname=f"BigEarthNet-v1.0/{patch.name}")
    return Archive(out, *digests(out))


def pinned(source: type[Source], archive: Archive) -> tuple[RemoteFile, ...]:
    """The source's pinned file with the test archive's md5 in place of the release's."""
    return (dataclasses.replace(source.files[0], md5=archive.md5),)


def files_in(folder: Path) -> list[Path]:
    """Every file (and link, even dangling) under ``folder``, sorted."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())
