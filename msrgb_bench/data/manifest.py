"""The dataset folder contract: ``manifest.parquet`` and ``dataset.json``.

A built dataset folder holds::

    DIR/manifest.parquet   one row per sample (schema: MANIFEST_SCHEMA)
    DIR/dataset.json       recipe, classes, bands, sources, seed, versions, content hash
    DIR/ms/...             teacher GeoTIFFs (original dtype, CRS kept)
    DIR/rgb/...            student images
    DIR/README.md          the data card

This module is the only place that knows the schema. The pipelines write through it and every
reader (datasets, evaluator, hub) reads through it, so the folder is the one contract between
building and using a dataset.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from msrgb_bench.atomic import atomic_path, write_text_atomic
from msrgb_bench.errors import ManifestError

MANIFEST_NAME = "manifest.parquet"
INFO_NAME = "dataset.json"
CARD_NAME = "README.md"
SCHEMA_VERSION = 1

MODALITIES = ("ms", "rgb")
SPLITS = ("train", "val", "test")

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("modality", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        # Primary class index (the class folder of a multi-label sample); -1 where hidden.
        pa.field("label", pa.int64(), nullable=False),
        pa.field("label_name", pa.string(), nullable=False),
        # Every class index of the sample: [label] for single-label samples.
        pa.field("labels", pa.list_(pa.int64()), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("height", pa.int64(), nullable=False),
        pa.field("width", pa.int64(), nullable=False),
        # Number of bands (channels) stored in the file.
        pa.field("bands", pa.int64(), nullable=False),
        pa.field("crs", pa.string(), nullable=True),
        pa.field("lon", pa.float64(), nullable=True),
        pa.field("lat", pa.float64(), nullable=True),
        pa.field("region", pa.string(), nullable=False),
    ]
)
MANIFEST_COLUMNS = tuple(MANIFEST_SCHEMA.names)


@dataclass(frozen=True)
class SourceFile:
    """A file a dataset was built from, with its checksum."""

    name: str
    sha256: str


@dataclass(frozen=True)
class SourceRecord:
    """Provenance of one public source used by a build."""

    name: str
    license: str
    citation: str
    homepage: str
    files: tuple[SourceFile, ...] = ()


@dataclass(frozen=True)
class DatasetInfo:
    """The content of ``dataset.json``.

    Attributes:
        recipe: Recipe name the dataset was built from.
        version: Dataset version (the recipe's).
        classes: Class names in index order.
        ms_bands: Band names of the teacher files, in file order.
        rgb_bands: Band names of the student files.
        multilabel: Whether teacher samples carry several labels.
        ms_size: Teacher chip size in pixels (height = width).
        rgb_size: Student image size in pixels (height = width).
        seed: Build seed.
        tool_version: msrgb-bench version that built it.
        content_hash: sha256 of the manifest's content (see :func:`content_hash`).
        sources: Provenance of every source used.
        split_method: How each modality was split, e.g. ``{"ms": "spatial-blocks"}``.
        removed_duplicates: Number of near-duplicate samples removed.
        norm: Per-modality, per-band mean/std on the train split (filled by the data module).
        extra: Recipe-specific extra facts (class map, dropped classes, counts...).
        schema_version: Version of this contract.
    """

    recipe: str
    version: str
    classes: tuple[str, ...]
    ms_bands: tuple[str, ...]
    rgb_bands: tuple[str, ...]
    multilabel: bool
    ms_size: int
    rgb_size: int
    seed: int
    tool_version: str
    content_hash: str
    sources: tuple[SourceRecord, ...] = ()
    split_method: dict[str, str] = field(default_factory=dict)
    removed_duplicates: int = 0
    norm: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """Serialise deterministically (sorted keys, fixed indentation, trailing newline)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        """Build from a parsed ``dataset.json`` object."""
        sources = tuple(
            SourceRecord(
                name=s["name"],
                license=s["license"],
                citation=s["citation"],
                homepage=s["homepage"],
                files=tuple(SourceFile(**f) for f in s.get("files", ())),
            )
            for s in data.get("sources", ())
        )
        kwargs = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        kwargs.update(
            classes=tuple(data["classes"]),
            ms_bands=tuple(data["ms_bands"]),
            rgb_bands=tuple(data["rgb_bands"]),
            sources=sources,
        )
        return cls(**kwargs)


def content_hash(manifest: pd.DataFrame) -> str:
    """Return one sha256 over the dataset's content.

    The hash covers, for every sample in ``sample_id`` order: id, modality, split, labels, path
    and the file's sha256. It does not depend on the Parquet writer's version.
    """
    digest = hashlib.sha256()
    ordered = manifest.sort_values("sample_id", kind="stable")
    for row in ordered.itertuples(index=False):
        labels = ",".join(str(int(v)) for v in row.labels)
        line = "\t".join([row.sample_id, row.modality, row.split, labels, row.path, row.sha256])
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _check_frame(manifest: pd.DataFrame, where: Path) -> None:
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise ManifestError(where, f"missing column(s) {', '.join(missing)}")
    extra = [c for c in manifest.columns if c not in MANIFEST_COLUMNS]
    if extra:
        raise ManifestError(where, f"unexpected column(s) {', '.join(extra)}")
    dup = manifest["sample_id"][manifest["sample_id"].duplicated()]
    if len(dup):
        raise ManifestError(where, f"duplicated sample_id {dup.iloc[0]!r}")
    bad_mod = set(manifest["modality"]) - set(MODALITIES)
    if bad_mod:
        raise ManifestError(where, f"unknown modality {sorted(bad_mod)[0]!r}")
    bad_split = set(manifest["split"]) - set(SPLITS)
    if bad_split:
        raise ManifestError(where, f"unknown split {sorted(bad_split)[0]!r}")


def write_manifest(manifest: pd.DataFrame, root: str | Path) -> Path:
    """Validate and write ``root/manifest.parquet`` atomically and byte-reproducibly.

    Rows are sorted by ``sample_id``; the file has a fixed schema and no pandas index.

    Returns:
        The written path.
    """
    target = Path(root) / MANIFEST_NAME
    _check_frame(manifest, target)
    ordered = manifest.loc[:, list(MANIFEST_COLUMNS)].sort_values("sample_id", kind="stable")
    table = pa.Table.from_pandas(ordered, schema=MANIFEST_SCHEMA, preserve_index=False)
    table = table.replace_schema_metadata({"msrgb.schema_version": str(SCHEMA_VERSION)})
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=False)
    return target


def read_manifest(root: str | Path) -> pd.DataFrame:
    """Read and validate ``root/manifest.parquet``.

    Raises:
        ManifestError: If the file is missing, unreadable or breaks the schema.
    """
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(path, "no manifest here; is this a dataset folder built by msrgb?")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ManifestError(path, f"unreadable Parquet file ({exc})") from exc
    frame = table.to_pandas()
    _check_frame(frame, path)
    return frame


def write_info(info: DatasetInfo, root: str | Path) -> Path:
    """Write ``root/dataset.json`` atomically."""
    target = Path(root) / INFO_NAME
    write_text_atomic(target, info.to_json())
    return target


def read_info(root: str | Path) -> DatasetInfo:
    """Read ``root/dataset.json``.

    Raises:
        ManifestError: If it is missing, not JSON, or lacks required keys.
    """
    path = Path(root) / INFO_NAME
    if not path.is_file():
        raise ManifestError(path, "no dataset.json here; is this a dataset folder built by msrgb?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DatasetInfo.from_dict(data)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ManifestError(path, f"malformed dataset.json ({exc!r})") from exc


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_files(
    root: str | Path, manifest: pd.DataFrame, rows: Iterable[int] | None = None
) -> None:
    """Check that every file named by ``manifest`` exists under ``root`` with its sha256.

    Raises:
        ManifestError: Naming the first missing or altered file.
    """
    root = Path(root)
    frame = manifest if rows is None else manifest.iloc[list(rows)]
    for rel, expected in zip(frame["path"], frame["sha256"], strict=True):
        path = root / rel
        if not path.is_file():
            raise ManifestError(path, "listed in manifest.parquet but missing")
        actual = file_sha256(path)
        if actual != expected:
            raise ManifestError(
                path, f"sha256 {actual} differs from the manifest's {expected} (altered or corrupt)"
            )
