"""The one build procedure: sources -> validated chips -> places, splits, dedup -> dataset folder.

The folder is assembled in a staging folder beside ``out`` (``.<name>.partial``) and renamed onto
``out`` only when complete, so a failed build leaves nothing half-written and a killed build is
simply redone by the next run. Same inputs and seed give byte-identical ``manifest.parquet`` and
``dataset.json``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from msrgb_bench import __version__
from msrgb_bench.atomic import replace_dir, write_text_atomic
from msrgb_bench.data.manifest import (
    CARD_NAME,
    MANIFEST_NAME,
    DatasetInfo,
    SourceFile,
    SourceRecord,
    content_hash,
    write_info,
    write_manifest,
)
from msrgb_bench.errors import FileProblemError, RecipeError, UnknownClassError
from msrgb_bench.pipelines.card import render_card
from msrgb_bench.pipelines.chips import ChipRecord, process_item
from msrgb_bench.pipelines.dedup import duplicates_to_remove, near_duplicate_pairs
from msrgb_bench.pipelines.recipe import Recipe, load_recipe
from msrgb_bench.pipelines.sources import Source, SourceItem, create_source
from msrgb_bench.pipelines.splits import group_split, spatial_blocks

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path(os.environ.get("MSRGB_CACHE", Path.home() / ".cache" / "msrgb-bench"))
PARTITION_PRIORITY = ("ms/train", "ms/val", "ms/test", "rgb/train", "rgb/val", "rgb/test")

# Maps a per-chip function over tasks; the default is a local process pool. A Dask client's
# map/gather can be plugged in here for builds too large for one machine.
ChipMapper = Callable[
    [Callable[[tuple[Source, SourceItem, int]], ChipRecord], list[tuple[Source, SourceItem, int]]],
    Iterator[ChipRecord],
]


@dataclass(frozen=True)
class Entry:
    """A sample selected for the build, before its chip is processed."""

    source: Source
    item: SourceItem
    modality: str
    label: int
    labels: tuple[int, ...]
    sample_id: str


@dataclass
class BuildReport:
    """What a build did.

    Attributes:
        out: The dataset folder.
        counts: Samples per modality/split.
        removed_duplicates: Near-duplicates removed.
        dropped_unmapped: Samples dropped per (source, class) by the class map.
        shared_places_dropped: Samples dropped because their place went to the other modality.
        seconds: Wall time.
    """

    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    removed_duplicates: int = 0
    dropped_unmapped: dict[tuple[str, str], int] = field(default_factory=dict)
    shared_places_dropped: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Return the number of samples in the dataset."""
        return sum(self.counts.values())


def sample_id_for(source: str, key: str) -> str:
    """Return the stable, opaque sample id of a source item.

    The id is the source name and 16 hex digits of the sha256 of ``source/key``: stable across
    rebuilds, safe as a file name, and free of the class name (source keys usually contain it),
    so a public copy with hidden test labels does not leak them through its ids. The readable
    origin stays in the manifest's ``source_path``.
    """
    digest = hashlib.sha256(f"{source}/{key}".encode()).hexdigest()[:16]
    return f"{source}.{digest}"


def _place_owner(place: str, seed: int) -> str:
    digest = hashlib.sha256(f"{seed}:{place}".encode()).digest()
    return "ms" if digest[0] % 2 == 0 else "rgb"


def _select(
    recipe: Recipe,
    sources: list[Source],
    items: list[list[SourceItem]],
    seed: int,
    report: BuildReport,
) -> list[Entry]:
    class_index = {c: i for i, c in enumerate(recipe.classes)}
    entries: list[Entry] = []
    for source, source_items in zip(sources, items, strict=True):
        mapping = recipe.class_map[source.name]
        for item in source_items:
            names = item.labels or (item.class_name,)
            mapped: list[int] = []
            for name in (item.class_name, *names):
                if name not in mapping:
                    raise UnknownClassError(
                        item.path,
                        f"class '{name}' of source '{source.name}' is not in recipe "
                        f"'{recipe.name}' class map (add it, or map it to null to drop it)",
                    )
            for name in names:
                target = mapping[name]
                if target is not None:
                    mapped.append(class_index[target])
            primary_name = mapping[item.class_name]
            if not mapped or (primary_name is None and not item.labels):
                key = (source.name, item.class_name)
                report.dropped_unmapped[key] = report.dropped_unmapped.get(key, 0) + 1
                continue
            primary = class_index[primary_name] if primary_name is not None else mapped[0]
            entries.append(
                Entry(
                    source=source,
                    item=item,
                    modality=source.modality,
                    label=primary,
                    labels=tuple(sorted(set(mapped))),
                    sample_id=sample_id_for(source.name, item.key),
                )
            )
    # Teacher and student never share a place: a place seen in both goes to one modality only.
    by_modality: dict[str, set[str]] = {"ms": set(), "rgb": set()}
    for e in entries:
        by_modality[e.modality].add(e.item.place)
    shared = by_modality["ms"] & by_modality["rgb"]
    kept = [
        e
        for e in entries
        if e.item.place not in shared or _place_owner(e.item.place, seed) == e.modality
    ]
    report.shared_places_dropped = len(entries) - len(kept)
    ids = Counter(e.sample_id for e in kept)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        raise RecipeError(Path(recipe.path), f"two samples would get the id '{dup[0]}'")
    return sorted(kept, key=lambda e: e.sample_id)


def _process(
    task: tuple[Source, SourceItem, int], staging: Path, ms_size: int, rgb_size: int
) -> ChipRecord:
    source, item, index = task
    return process_item(source, item, index, staging, ms_size, rgb_size)


def chunk_size(n_tasks: int, workers: int) -> int:
    """Return how many chips one worker task handles (about 8 tasks per worker, at most 256)."""
    return max(1, min(256, n_tasks // (workers * 8) or 1))


def _pool_mapper(workers: int) -> ChipMapper:
    def mapper(
        fn: Callable[[tuple[Source, SourceItem, int]], ChipRecord],
        tasks: list[tuple[Source, SourceItem, int]],
    ) -> Iterator[ChipRecord]:
        if workers <= 1:
            yield from map(fn, tasks)
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(fn, tasks, chunksize=chunk_size(len(tasks), workers))

    return mapper


def _norm(records: Iterable[ChipRecord]) -> dict[str, list[float]]:
    recs = list(records)
    if not recs:
        return {}
    sums = np.array([r.band_sum for r in recs], dtype=np.float64).sum(axis=0)
    sumsq = np.array([r.band_sumsq for r in recs], dtype=np.float64).sum(axis=0)
    n = float(sum(r.pixels for r in recs))
    mean = sums / n
    std = np.sqrt(np.maximum(sumsq / n - mean * mean, 0.0))
    return {"mean": [round(float(v), 6) for v in mean], "std": [round(float(v), 6) for v in std]}


def _check_out(out: Path) -> None:
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_NAME).is_file())
    ):
        raise FileProblemError(
            out, "exists and is not an msrgb dataset folder; refusing to overwrite it"
        )


def build_dataset(
    recipe: str | Path | Recipe = "demo",
    out: str | Path = "data/demo",
    sources: Mapping[str, str | Path] | None = None,
    seed: int | None = None,
    workers: int = 1,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
    source_files: dict[str, Any] | None = None,
    size: str | int | None = None,
    progress: bool = True,
    mapper: ChipMapper | None = None,
) -> BuildReport:
    """Build an asymmetric MS/RGB dataset folder from a recipe.

    Args:
        recipe: Recipe name, recipe file, or parsed recipe.
        out: Dataset folder to create (replaced if it is an older msrgb dataset).
        sources: ``{source name: path}`` for files the user already has (``--source``).
        seed: Build seed (default: the recipe's).
        workers: Worker processes for the per-chip work.
        cache_dir: Where downloads go (default ``$MSRGB_CACHE`` or ``~/.cache/msrgb-bench``).
        endpoint: Hugging Face Hub endpoint for Hub-hosted source files.
        source_files: ``{source name: tuple of RemoteFile}`` overriding the pinned files
            (mirrors, tests).
        size: Size of synthetic sources (``"tiny"``, ``"small"``, ``"medium"``, ``"eurosat"`` or a
            number per class); ignored by real sources.
        progress: Show progress bars.
        mapper: Alternative executor for the per-chip work (e.g. a Dask cluster).

    Returns:
        A :class:`BuildReport`.
    """
    start = time.perf_counter()
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    seed = recipe.seed if seed is None else int(seed)
    out = Path(out).expanduser().resolve()
    _check_out(out)
    unknown = set(sources or {}) - set(recipe.sources)
    if unknown:
        raise RecipeError(
            Path(recipe.path),
            f"--source names '{sorted(unknown)[0]}', which this recipe does not use",
        )
    report = BuildReport(out=out)
    staging = out.parent / f".{out.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    chips_dir = staging / "_chips"
    chips_dir.mkdir(parents=True)
    try:
        built = _build_into(
            recipe, staging, chips_dir, seed, workers, sources or {}, cache_dir, endpoint,
            source_files or {}, size, progress, mapper, report,
        )  # fmt: skip
        del built
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.seconds = time.perf_counter() - start
    return report


def _build_into(
    recipe: Recipe,
    staging: Path,
    chips_dir: Path,
    seed: int,
    workers: int,
    user_paths: Mapping[str, str | Path],
    cache_dir: str | Path | None,
    endpoint: str | None,
    source_files: dict[str, Any],
    size: str | int | None,
    progress: bool,
    mapper: ChipMapper | None,
    report: BuildReport,
) -> Path:
    cache = Path(cache_dir).expanduser() if cache_dir else DEFAULT_CACHE
    srcs: list[Source] = []
    items: list[list[SourceItem]] = []
    for name in recipe.sources:
        options = dict(recipe.source_options.get(name, {}))
        options.setdefault("progress", progress)
        if name.startswith("synthetic"):
            options.setdefault("seed", seed)
            if size is not None:
                options["size"] = size
            size_key = "chip_size"
            options.setdefault(
                size_key,
                recipe.teacher.size if name in recipe.teacher.sources else recipe.student.size,
            )
        source = create_source(
            name, path=user_paths.get(name), cache_dir=cache, files=source_files.get(name),
            endpoint=endpoint, options=options,
        )  # fmt: skip
        side = "ms" if name in recipe.teacher.sources else "rgb"
        if source.modality != side:
            raise RecipeError(
                Path(recipe.path),
                f"source '{name}' gives {source.modality} images but is listed as {side}",
            )
        root = source.prepare()
        srcs.append(source)
        items.append(source.items(root))
    entries = _select(recipe, srcs, items, seed, report)
    if not entries:
        raise RecipeError(Path(recipe.path), "no sample left after applying the class map")

    tasks = [(e.source, e.item, i) for i, e in enumerate(entries)]
    fn = partial(
        _process, staging=chips_dir, ms_size=recipe.teacher.size, rgb_size=recipe.student.size
    )
    run = mapper or _pool_mapper(workers)
    records: list[ChipRecord] = list(
        tqdm(run(fn, tasks), total=len(tasks), desc="chips", unit="chip", disable=not progress)
    )

    # Splits, per modality, grouped by spatial block (coordinates known) or by place.
    splits: list[str] = [""] * len(entries)
    split_method: dict[str, str] = {}
    for modality in ("ms", "rgb"):
        idx = [i for i, e in enumerate(entries) if e.modality == modality]
        if not idx:
            continue
        bounds = [records[i].bounds for i in idx]
        if all(b is not None for b in bounds):
            groups = spatial_blocks([b for b in bounds if b is not None], recipe.split_block_deg)
            split_method[modality] = (
                f"spatial blocks of {recipe.split_block_deg:g} x {recipe.split_block_deg:g} "
                "degrees "
                "(footprint centroids joined to a WGS84 grid with geopandas), dealt to splits "
                "with per-class ratios"
            )
        else:
            groups = [entries[i].item.place for i in idx]
            split_method[modality] = (
                "stratified by class, grouped by place (the source gives no coordinates, so "
                "no spatial blocking)"
            )
        chosen = group_split(groups, [entries[i].label for i in idx], recipe.splits, seed)
        for i, s in zip(idx, chosen, strict=True):
            splits[i] = s

    # Near-duplicates across splits and modalities.
    pairs = near_duplicate_pairs(
        [r.phash for r in records], [r.thumb for r in records], recipe.dedup_max_distance
    )
    partitions = [f"{e.modality}/{s}" for e, s in zip(entries, splits, strict=True)]
    removed = set(duplicates_to_remove(len(entries), pairs, partitions, PARTITION_PRIORITY))
    report.removed_duplicates = len(removed)

    rows: list[dict[str, Any]] = []
    for i, (entry, rec, split) in enumerate(zip(entries, records, splits, strict=True)):
        staged = chips_dir / rec.staged
        if i in removed:
            staged.unlink()
            continue
        label_name = recipe.classes[entry.label]
        rel = f"{entry.modality}/{split}/{label_name}/{entry.sample_id}{staged.suffix}"
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        rows.append(
            {
                "sample_id": entry.sample_id,
                "modality": entry.modality,
                "split": split,
                "label": entry.label,
                "label_name": label_name,
                "labels": list(entry.labels),
                "source": entry.source.name,
                "source_path": entry.item.source_path,
                "path": rel,
                "sha256": rec.sha256,
                "height": rec.height,
                "width": rec.width,
                "bands": rec.bands,
                "crs": rec.crs,
                "lon": rec.lon,
                "lat": rec.lat,
                "region": entry.source.region,
            }
        )
    chips_dir.rmdir()
    manifest = pd.DataFrame(rows)
    kept = [r for i, r in enumerate(records) if i not in removed]
    kept_entries = [e for i, e in enumerate(entries) if i not in removed]
    kept_splits = [s for i, s in enumerate(splits) if i not in removed]
    norm = {
        m: _norm(
            r
            for r, e, s in zip(kept, kept_entries, kept_splits, strict=True)
            if e.modality == m and s == "train"
        )
        for m in ("ms", "rgb")
    }
    ms_sources = [s for s in srcs if s.modality == "ms"]
    rgb_sources = [s for s in srcs if s.modality == "rgb"]
    info = DatasetInfo(
        recipe=recipe.name,
        version=recipe.version,
        classes=recipe.classes,
        ms_bands=ms_sources[0].band_names,
        rgb_bands=rgb_sources[0].band_names if rgb_sources else ("R", "G", "B"),
        multilabel=recipe.multilabel,
        ms_size=recipe.teacher.size,
        rgb_size=recipe.student.size,
        seed=seed,
        tool_version=__version__,
        content_hash=content_hash(manifest),
        sources=tuple(
            SourceRecord(
                name=s.name,
                license=s.license,
                citation=s.citation,
                homepage=s.homepage,
                files=tuple(SourceFile(n, h) for n, h in sorted(s.used_files.items())),
            )
            for s in srcs
        ),
        split_method=split_method,
        removed_duplicates=len(removed),
        norm={k: v for k, v in norm.items() if v},
        extra={
            "teacher_default_bands": list(recipe.teacher.default_bands),
            "dropped_unmapped": {
                f"{s}/{c}": n for (s, c), n in sorted(report.dropped_unmapped.items())
            },
            "shared_places_dropped": report.shared_places_dropped,
            "split_ratios": recipe.splits,
        },
    )
    write_manifest(manifest, staging)
    write_info(info, staging)
    write_text_atomic(
        staging / CARD_NAME,
        render_card(
            info, recipe, manifest, srcs, report.dropped_unmapped, report.shared_places_dropped
        ),
    )
    report.counts = {
        f"{m}/{s}": int(n) for (m, s), n in manifest.groupby(["modality", "split"]).size().items()
    }
    return staging
