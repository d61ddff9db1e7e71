"""The Source interface: what a public dataset is, where its files are, how a chip is read."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from msrgb_bench.registry import Registry


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

    Subclasses set the class attributes and implement :meth:`items` and :meth:`read`; the base
    class resolves where the files are (``--source NAME=PATH`` or a download) via :meth:`prepare`.

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

    @abc.abstractmethod
    def prepare(self) -> Path:
        """Make the data available locally and return the root that :meth:`items` reads."""

    @abc.abstractmethod
    def items(self, root: Path) -> list[SourceItem]:
        """List every sample under ``root``, sorted by key."""

    @abc.abstractmethod
    def read(self, item: SourceItem) -> Chip:
        """Read and validate one sample.

        Raises:
            CorruptRasterError: Naming the file, if it is unreadable or has the wrong shape/dtype.
        """


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
