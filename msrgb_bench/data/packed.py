"""Packed arrays: each modality and split of a dataset folder as one memory-mapped ``.npy``.

Reading one GeoTIFF per sample costs a file open and a decode; a packed array costs a slice of a
memory map. ``msrgb pack DIR`` writes::

    DIR/packed/<modality>-<split>.npy    (N, C, H, W) in the files' dtype, rows in manifest order
    DIR/packed/<modality>-<split>.json   its index (see :class:`PackedIndex`)

The whole ``packed/`` folder is written in a staging folder and renamed into place, so a crash
leaves either the old packed folder or the new one, never a mix. Every source file is checked
against its manifest sha256 while it is packed, and each index records the dataset's content hash
so a packed folder left over from another build is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

from msrgb_bench.atomic import replace_dir
from msrgb_bench.data.manifest import (
    INFO_NAME,
    MODALITIES,
    SPLITS,
    DatasetInfo,
    content_hash,
    file_sha256,
    read_info,
    read_manifest,
)
from msrgb_bench.data.readers import check_array, decode_sample
from msrgb_bench.errors import ManifestError

PACKED_DIR = "packed"
PACKED_FORMAT_VERSION = 1


@dataclass(frozen=True)
class PackedIndex:
    """The index of one packed array (``<modality>-<split>.json``).

    Attributes:
        modality: ``"ms"`` or ``"rgb"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        sample_ids: The sample of each row, in row order (the manifest's order).
        shape: Array shape ``(N, C, H, W)``.
        dtype: NumPy dtype name of the array.
        bands: Band names of axis 1.
        sha256: sha256 of the ``.npy`` file.
        content_hash: ``dataset.json``'s content hash of the dataset that was packed.
        format_version: Version of this layout.
    """

    modality: str
    split: str
    sample_ids: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    bands: tuple[str, ...]
    sha256: str
    content_hash: str
    format_version: int = PACKED_FORMAT_VERSION

    @property
    def array_name(self) -> str:
        """File name of the array inside ``packed/``."""
        return array_name(self.modality, self.split)

    def to_json(self) -> str:
        """Serialise deterministically."""
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: Path) -> PackedIndex:
        """Read an index file.

        Raises:
            ManifestError: If it is not a valid index.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                modality=data["modality"],
                split=data["split"],
                sample_ids=tuple(data["sample_ids"]),
                shape=tuple(int(v) for v in data["shape"]),
                dtype=str(data["dtype"]),
                bands=tuple(data["bands"]),
                sha256=data["sha256"],
                content_hash=data["content_hash"],
                format_version=int(data["format_version"]),
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ManifestError(path, f"malformed packed index ({exc!r})") from exc


def array_name(modality: str, split: str) -> str:
    """Return the file name of the packed array of ``modality`` and ``split``."""
    return f"{modality}-{split}.npy"


def index_path(root: str | Path, modality: str, split: str) -> Path:
    """Return the path of the index of ``modality`` and ``split`` under ``root``."""
    return Path(root) / PACKED_DIR / f"{modality}-{split}.json"


def subset(manifest: pd.DataFrame, modality: str, split: str) -> pd.DataFrame:
    """Return the manifest rows of ``modality`` and ``split`` in ``sample_id`` order."""
    rows = manifest[(manifest["modality"] == modality) & (manifest["split"] == split)]
    return rows.sort_values("sample_id", kind="stable").reset_index(drop=True)


def bands_of(info: DatasetInfo, modality: str) -> tuple[str, ...]:
    """Return the band names stored in the files of ``modality``."""
    return info.ms_bands if modality == "ms" else info.rgb_bands


def size_of(info: DatasetInfo, modality: str) -> int:
    """Return the image size (height = width) of ``modality``."""
    return info.ms_size if modality == "ms" else info.rgb_size


def pack_dataset(root: str | Path, *, progress: bool = False) -> list[Path]:
    """Pack every modality and split of a dataset folder into ``root/packed/``.

    Each file is read once, checked against the manifest's sha256 and shape, decoded and written
    into the array. An older ``packed/`` folder is replaced only once the new one is complete.

    Args:
        root: The dataset folder.
        progress: Show a progress bar per array.

    Returns:
        The written array paths.

    Raises:
        ManifestError: If the manifest disagrees with ``dataset.json`` or with a file.
        CorruptRasterError: If a file cannot be decoded or has the wrong shape or dtype.
    """
    root = Path(root)
    info = read_info(root)
    manifest = read_manifest(root)
    check_content_hash(root, info, manifest)
    staging = Path(tempfile.mkdtemp(prefix=f".{PACKED_DIR}-", dir=root))
    written: list[str] = []
    try:
        for modality in MODALITIES:
            for split in SPLITS:
                rows = subset(manifest, modality, split)
                if len(rows):
                    _pack_one(root, staging, info, rows, modality, split, progress=progress)
                    written.append(array_name(modality, split))
        replace_dir(staging, root / PACKED_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [root / PACKED_DIR / name for name in written]


def _pack_one(
    root: Path,
    staging: Path,
    info: DatasetInfo,
    rows: pd.DataFrame,
    modality: str,
    split: str,
    *,
    progress: bool,
) -> None:
    bands = bands_of(info, modality)
    size = size_of(info, modality)
    shape = (len(bands), size, size)
    target = staging / array_name(modality, split)
    array: np.memmap | None = None
    items = zip(rows["path"], rows["sha256"], strict=True)
    bar = tqdm(
        items, total=len(rows), desc=f"pack {modality}/{split}", unit="chip", disable=not progress
    )
    for k, (rel, expected) in enumerate(bar):
        path = root / rel
        if not path.is_file():
            raise ManifestError(path, "listed in manifest.parquet but missing")
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ManifestError(
                path, f"sha256 {actual} differs from the manifest's {expected} (altered or corrupt)"
            )
        sample = decode_sample(data, modality, path)
        if array is None:
            array = np.lib.format.open_memmap(
                target, mode="w+", dtype=sample.dtype, shape=(len(rows), *shape)
            )
        check_array(sample, shape, path, array.dtype)
        array[k] = sample
    assert array is not None  # rows is never empty here
    dtype = array.dtype
    array.flush()
    del array
    index = PackedIndex(
        modality=modality,
        split=split,
        sample_ids=tuple(rows["sample_id"]),
        shape=(len(rows), *shape),
        dtype=dtype.name,
        bands=tuple(bands),
        sha256=file_sha256(target),
        content_hash=info.content_hash,
    )
    (staging / f"{modality}-{split}.json").write_text(index.to_json(), encoding="utf-8")


def read_packed_index(root: str | Path, modality: str, split: str) -> PackedIndex | None:
    """Return the index of a packed array, or ``None`` when the folder has none for it."""
    path = index_path(root, modality, split)
    if not path.is_file():
        return None
    return PackedIndex.read(path)


def check_packed(
    root: str | Path,
    index: PackedIndex,
    info: DatasetInfo,
    rows: pd.DataFrame,
    *,
    checksum: bool = False,
) -> Path:
    """Check a packed array against ``dataset.json`` and the manifest rows it claims to hold.

    Cheap checks always run (content hash, sample ids and order, shape, the ``.npy`` header);
    ``checksum=True`` also hashes the whole array file.

    Args:
        root: The dataset folder.
        index: The array's index.
        info: The folder's ``dataset.json``.
        rows: The manifest rows of the index's modality and split, in ``sample_id`` order.
        checksum: Verify the array's sha256.

    Returns:
        The path of the array.

    Raises:
        ManifestError: Naming the index or array and what disagrees.
    """
    ipath = index_path(root, index.modality, index.split)
    apath = Path(root) / PACKED_DIR / index.array_name
    if index.format_version != PACKED_FORMAT_VERSION:
        raise ManifestError(ipath, f"packed format version {index.format_version} is not supported")
    if index.content_hash != info.content_hash:
        raise ManifestError(
            ipath,
            f"packed from another build (content hash {index.content_hash[:12]}..., dataset.json "
            f"says {info.content_hash[:12]}...); rerun `msrgb pack {root}`",
        )
    if tuple(rows["sample_id"]) != index.sample_ids:
        raise ManifestError(
            ipath, "its sample ids disagree with manifest.parquet; rerun msrgb pack"
        )
    bands = bands_of(info, index.modality)
    size = size_of(info, index.modality)
    expected_shape = (len(rows), len(bands), size, size)
    if index.shape != expected_shape or index.bands != tuple(bands):
        raise ManifestError(
            ipath,
            f"shape {index.shape} / bands {index.bands} disagree with dataset.json "
            f"({expected_shape} / {tuple(bands)})",
        )
    if not apath.is_file():
        raise ManifestError(apath, "named by its packed index but missing")
    try:
        header = np.load(apath, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise ManifestError(apath, f"unreadable .npy file ({exc})") from exc
    if tuple(header.shape) != index.shape or header.dtype.name != index.dtype:
        raise ManifestError(
            apath,
            f"holds {header.dtype.name}{tuple(header.shape)}, its index says "
            f"{index.dtype}{index.shape} (truncated or replaced)",
        )
    del header
    if checksum:
        actual = file_sha256(apath)
        if actual != index.sha256:
            raise ManifestError(
                apath,
                f"sha256 {actual} differs from its index's {index.sha256} (altered or corrupt)",
            )
    return apath


def verify_packed(root: str | Path, *, checksum: bool = True) -> list[Path]:
    """Check every packed array of a dataset folder (see :func:`check_packed`).

    Also refuses an array without an index, or an index without an array.

    Returns:
        The checked array paths (empty when the folder is not packed).
    """
    root = Path(root)
    folder = root / PACKED_DIR
    if not folder.is_dir():
        return []
    info = read_info(root)
    manifest = read_manifest(root)
    checked: list[Path] = []
    for modality in MODALITIES:
        for split in SPLITS:
            index = read_packed_index(root, modality, split)
            apath = folder / array_name(modality, split)
            if index is None:
                if apath.exists():
                    raise ManifestError(apath, "packed array without its index; rerun msrgb pack")
                continue
            rows = subset(manifest, modality, split)
            checked.append(check_packed(root, index, info, rows, checksum=checksum))
    return checked


def open_packed(path: str | Path) -> np.ndarray:
    """Memory-map a packed array read-only."""
    return np.load(path, mmap_mode="r")


def check_content_hash(root: str | Path, info: DatasetInfo, manifest: pd.DataFrame) -> None:
    """Check that ``dataset.json``'s content hash is the hash of ``manifest``.

    Raises:
        ManifestError: Naming ``dataset.json`` when they disagree.
    """
    actual = content_hash(manifest)
    if actual != info.content_hash:
        raise ManifestError(
            Path(root) / INFO_NAME,
            f"content hash {info.content_hash[:12]}... disagrees with manifest.parquet "
            f"({actual[:12]}...); the folder was modified after it was built",
        )
