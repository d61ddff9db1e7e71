"""The Source interface: what a public dataset is, where its files are, how a chip is read."""

from __future__ import annotations

import abc
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from msrgb_bench.errors import DownloadError, SourceLayoutError
from msrgb_bench.registry import Registry

logger = logging.getLogger(__name__)

# Folders never searched for a source's layout (macOS zip debris, VCS folders).
_SKIP_DIRS = frozenset({"__MACOSX"})
# How deep below a given folder the layout is looked for.
_SEARCH_DEPTH = 8


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file of a source, pinned to a revision and a checksum.

    Files hosted on the Hugging Face Hub name ``hf_repo``/``hf_revision``/``hf_filename`` and are
    fetched with huggingface_hub; others are fetched from ``url`` with pooch.

    Attributes:
        filename: Local file name.
        url: Full, pinned download URL.
        md5: Expected md5 (hex), if known.
        sha256: Expected sha256 (hex), if known (preferred over md5).
        size: Expected size in bytes, if known.
        hf_repo: Hub dataset repository id, for Hub-hosted files.
        hf_revision: Hub commit the file is pinned to.
        hf_filename: Path of the file inside the Hub repository.
    """

    filename: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    hf_repo: str | None = None
    hf_revision: str | None = None
    hf_filename: str | None = None

    @classmethod
    def on_hub(cls, repo: str, revision: str, filename: str, md5: str) -> RemoteFile:
        """Return a file of a Hub dataset repository, pinned to a commit and an md5."""
        return cls(
            filename=filename,
            url=f"https://huggingface.co/datasets/{repo}/resolve/{revision}/{filename}",
            md5=md5,
            hf_repo=repo,
            hf_revision=revision,
            hf_filename=filename,
        )

    @property
    def known_hash(self) -> str | None:
        """Return the checksum in pooch's ``algo:hex`` form (sha256 preferred)."""
        if self.sha256:
            return f"sha256:{self.sha256}"
        if self.md5:
            return f"md5:{self.md5}"
        return None


@dataclass(frozen=True)
class SourceItem:
    """One sample of a source before it is read.

    Attributes:
        source: Name of the source.
        key: Stable id within the source, e.g. ``"AnnualCrop/AnnualCrop_1"``.
        class_name: The source's own class name (its class folder).
        path: Absolute path of the file (or patch folder) to read.
        source_path: Path relative to the source's root, as in the original archive.
        place: Place key; two items showing the same place share it, across sources and modalities.
        labels: Every source class name of a multi-label item (empty for single-label).
    """

    source: str
    key: str
    class_name: str
    path: Path
    source_path: str
    place: str
    labels: tuple[str, ...] = ()


@dataclass
class Chip:
    """A read, validated sample.

    Attributes:
        array: Pixels as (C, H, W) in the file's original dtype.
        band_names: Name of each channel.
        crs: CRS as ``EPSG:xxxx`` or WKT, if georeferenced.
        transform: Affine geotransform as 6 GDAL-order floats, if georeferenced.
        lonlat_bounds: (west, south, east, north) footprint in WGS84, if known.
    """

    array: np.ndarray
    band_names: tuple[str, ...]
    crs: str | None = None
    transform: tuple[float, float, float, float, float, float] | None = None
    lonlat_bounds: tuple[float, float, float, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def centroid(self) -> tuple[float, float] | None:
        """Return the (lon, lat) centre of the footprint, if known."""
        if self.lonlat_bounds is None:
            return None
        west, south, east, north = self.lonlat_bounds
        return ((west + east) / 2.0, (south + north) / 2.0)


class Source(abc.ABC):
    """A public dataset: provenance, files, archive layout and chip reader.

    Subclasses set the class attributes and implement :meth:`is_root`, :meth:`items` and
    :meth:`read`; the base class resolves where the files are via :meth:`prepare`:

    * ``path`` is a file: the original archive. Its checksum must equal one of :attr:`files`
      exactly (else :class:`~msrgb_bench.errors.ChecksumMismatchError`); it is unpacked safely
      into ``cache_dir``.
    * ``path`` is a folder: the extracted archive or a plain folder of class folders; the root
      of the known layout is looked for inside it (:attr:`archive_root` first).
    * ``path`` is ``None``: every pinned file is downloaded (Hub or pooch), verified and unpacked.

    After :meth:`prepare`, :attr:`used_files` maps each archive used to its sha256; for a folder
    it maps ``"<folder name>/"`` to :func:`~msrgb_bench.pipelines.fetch.tree_sha256` of the root.

    Args:
        path: A user-supplied location (original archive, extracted archive, or a folder of class
            folders). ``None`` downloads the pinned files into ``cache_dir``.
        cache_dir: Where downloads and extractions go.
        files: Override of :attr:`files` (mirrors, or test archives with their own checksums).
        endpoint: Hugging Face Hub endpoint for Hub-hosted files (``None``: the default Hub).
        options: Source-specific options from the recipe (e.g. the synthetic source's size).
    """

    name: ClassVar[str] = ""
    modality: ClassVar[str] = "ms"
    title: ClassVar[str] = ""
    license: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    homepage: ClassVar[str] = ""
    region: ClassVar[str] = ""
    band_names: ClassVar[tuple[str, ...]] = ()
    multilabel: ClassVar[bool] = False
    files: tuple[RemoteFile, ...] = ()
    # Where the layout's root (what items() reads) sits inside the extracted archive.
    archive_root: ClassVar[str] = ""

    def __init__(
        self,
        path: str | Path | None = None,
        cache_dir: str | Path | None = None,
        files: tuple[RemoteFile, ...] | None = None,
        endpoint: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else None
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        if files is not None:
            self.files = tuple(files)
        self.endpoint = endpoint
        self.options = dict(options or {})
        # sha256 of every file the items came from (archives or loose files), filled by prepare().
        self.used_files: dict[str, str] = {}

    def prepare(self) -> Path:
        """Make the data available locally and return the root that :meth:`items` reads.

        Raises:
            ChecksumMismatchError: A downloaded or user-supplied archive differs from its pin.
            UnsafeArchiveError: An archive member would land outside the extraction folder.
            SourceLayoutError: The path (or archive) does not hold this source's layout.
            DownloadError: A pinned file could not be downloaded, or the source has none.
        """
        from msrgb_bench.pipelines import fetch

        self.used_files = {}
        cache = self.cache_dir or fetch.default_cache_dir()
        progress = bool(self.options.get("progress", True))
        if self.path is not None:
            path = self.path.resolve()
            if path.is_dir():
                root = self._locate_root(path, path)
                self.used_files[f"{path.name}/"] = fetch.tree_sha256(root)
                return root
            if not path.is_file():
                raise SourceLayoutError(path, f"does not exist (given for source {self.name!r})")
            remote, sha256 = fetch.match_archive(path, self.files)
            name = remote.filename if remote is not None else path.name
            self.used_files[name] = sha256
            return self._locate_root(self._extract(path, name, sha256, cache, progress), path)
        if not self.files:
            raise DownloadError(
                self.name,
                f"{self.title or self.name} has no public download that can be pinned; get it "
                f"from {self.homepage} and pass --source {self.name}=PATH",
            )
        folders: list[Path] = []
        for remote in self.files:
            local = fetch.fetch_file(remote, cache, endpoint=self.endpoint, progress=progress)
            self.used_files[remote.filename] = local.sha256
            if fetch.is_archive(local.path):
                folders.append(
                    self._extract(local.path, remote.filename, local.sha256, cache, progress)
                )
            else:
                folders.append(local.path.parent)
        for folder in folders:
            found = self.find_root(folder)
            if found is not None:
                return found
        raise SourceLayoutError(
            folders[0],
            f"the downloaded files hold no {self.title or self.name} layout ({self.layout_hint()})",
        )

    def _extract(self, archive: Path, name: str, sha256: str, cache: Path, progress: bool) -> Path:
        """Unpack ``archive`` (pinned as ``name``) into the cache, keyed by its checksum."""
        from msrgb_bench.pipelines.fetch import archive_stem, extract_archive

        target = cache / "extracted" / self.name / f"{archive_stem(name)}-{sha256[:16]}"
        return extract_archive(archive, target, progress=progress)

    def _locate_root(self, folder: Path, given: Path) -> Path:
        root = self.find_root(folder)
        if root is None:
            raise SourceLayoutError(
                given, f"no {self.title or self.name} layout found in it ({self.layout_hint()})"
            )
        return root

    def find_root(self, folder: Path) -> Path | None:
        """Return the folder :meth:`items` should read, searched for at and below ``folder``.

        ``folder`` itself and ``folder / archive_root`` are tried first, then every sub-folder,
        breadth first in name order, down to a few levels.
        """
        hinted = [folder, folder / self.archive_root] if self.archive_root else [folder]
        for candidate in hinted:
            if candidate.is_dir() and self.is_root(candidate):
                return candidate
        queue: deque[tuple[Path, int]] = deque([(folder, 0)])
        while queue:
            current, depth = queue.popleft()
            if self.is_root(current):
                return current
            if depth >= _SEARCH_DEPTH:
                continue
            children = sorted(
                p
                for p in current.iterdir()
                if p.is_dir() and not p.name.startswith(".") and p.name not in _SKIP_DIRS
            )
            queue.extend((child, depth + 1) for child in children)
        return None

    def is_root(self, folder: Path) -> bool:
        """Return whether ``folder`` is the root of this source's layout (what items() reads)."""
        return False

    def layout_hint(self) -> str:
        """Describe the expected layout, for error messages."""
        return f"expected {self.archive_root or 'the archive layout'}"

    @abc.abstractmethod
    def items(self, root: Path) -> list[SourceItem]:
        """List every sample under ``root``, sorted by key."""

    @abc.abstractmethod
    def read(self, item: SourceItem) -> Chip:
        """Read and validate one sample.

        Raises:
            CorruptRasterError: Naming the file, if it is unreadable or has the wrong shape/dtype.
        """


class ClassFolderSource(Source):
    """A source laid out as ``<root>/<class>/<file>``: one folder per class, one file per sample.

    Subclasses name the class folders they expect, the file suffixes, the pattern a file stem
    must follow (``{cls}`` stands for the class folder's name) and the place prefix, and what a
    valid file holds (``band_names``, ``dtypes``, ``chip_size``), which :meth:`read` checks.
    """

    class_names: ClassVar[tuple[str, ...]] = ()
    suffixes: ClassVar[tuple[str, ...]] = (".tif",)
    stem_pattern: ClassVar[str] = r"{cls}_\d+"
    place_prefix: ClassVar[str] = ""
    dtypes: ClassVar[tuple[str, ...]] = ("uint8",)
    chip_size: ClassVar[tuple[int, int] | None] = None
    """Required height and width, or ``None`` to accept any size (the build resizes)."""

    def read(self, item: SourceItem) -> Chip:
        """Read one sample: ``len(band_names)`` bands of one of ``dtypes``, of ``chip_size``.

        Raises:
            CorruptRasterError: Unreadable, of another band count, dtype or size, or empty.
        """
        from msrgb_bench.pipelines.sources.rasters import read_raster  # rasters imports this module

        return read_raster(
            item.path,
            bands=len(self.band_names),
            dtypes=self.dtypes,
            band_names=self.band_names,
            size=self.chip_size,
        )

    def _has_samples(self, folder: Path) -> bool:
        return any(p.suffix.lower() in self.suffixes and p.is_file() for p in folder.iterdir())

    def is_root(self, folder: Path) -> bool:
        """Return whether ``folder`` holds at least one known class folder with sample files."""
        return any(
            (folder / name).is_dir() and self._has_samples(folder / name)
            for name in self.class_names
        )

    def layout_hint(self) -> str:
        """Describe the expected layout, for error messages."""
        example = self.class_names[0] if self.class_names else "<class>"
        inside = f"{self.archive_root}/" if self.archive_root else ""
        return (
            f"expected class folders such as {inside}{example}/ holding {'/'.join(self.suffixes)} "
            f"files, named like {self.stem_pattern.replace('{cls}', example)}"
        )

    def place_key(self, class_name: str, stem: str) -> str:
        """Return the place key of a sample (``<prefix>:<stem>``)."""
        return f"{self.place_prefix or self.name}:{stem}"

    def items(self, root: Path) -> list[SourceItem]:
        """List ``root/<class>/<file>`` for every class folder holding sample files, sorted by key.

        Files with a sample suffix whose stem does not follow :attr:`stem_pattern` are skipped and
        counted in a warning (e.g. foreign images in a third-party copy).

        Raises:
            SourceLayoutError: If no sample is found.
        """
        root = Path(root)
        found: list[SourceItem] = []
        skipped: list[Path] = []
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for class_dir in class_dirs:
            pattern = re.compile(self.stem_pattern.replace("{cls}", re.escape(class_dir.name)))
            for path in sorted(class_dir.iterdir()):
                if path.name.startswith(".") or path.suffix.lower() not in self.suffixes:
                    continue
                if not path.is_file():
                    continue
                if not pattern.fullmatch(path.stem):
                    skipped.append(path)
                    continue
                found.append(
                    SourceItem(
                        source=self.name,
                        key=f"{class_dir.name}/{path.stem}",
                        class_name=class_dir.name,
                        path=path,
                        source_path=path.relative_to(root).as_posix(),
                        place=self.place_key(class_dir.name, path.stem),
                    )
                )
        if skipped:
            logger.warning(
                "%s: skipped %d file(s) not named like %s, e.g. %s",
                self.name,
                len(skipped),
                self.stem_pattern,
                skipped[0],
            )
        if not found:
            raise SourceLayoutError(
                root, f"no {self.title or self.name} samples found ({self.layout_hint()})"
            )
        return sorted(found, key=lambda item: item.key)


_SOURCES: Registry[type[Source]] = Registry("source")


def register_source(cls: type[Source]) -> type[Source]:
    """Class decorator registering a :class:`Source` subclass under its ``name``."""
    return _SOURCES.register(cls.name)(cls)


def source_class(name: str) -> type[Source]:
    """Return the :class:`Source` subclass registered as ``name``."""
    return _SOURCES.get(name)


def create_source(name: str, **kwargs: Any) -> Source:
    """Instantiate the source registered as ``name`` with ``kwargs``."""
    return _SOURCES.get(name)(**kwargs)


def list_sources() -> list[str]:
    """Return the registered source names, sorted."""
    return _SOURCES.names()
