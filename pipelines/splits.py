"""Leakage-proof splits: spatial blocks where coordinates are known, stratified otherwise.

Samples are first gathered into *groups* that must not be separated: all samples in one spatial
block (a ``block_deg`` x ``block_deg`` cell of a WGS84 grid, assigned with a geopandas spatial join
of the footprints' centroids) or, without coordinates, all samples of one place. Groups are then
dealt to train/val/test by a seeded greedy procedure that keeps every class close to the target
ratios, so the test places of a modality are disjoint from its train places.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point, box

SPLIT_ORDER = ("train", "val", "test")


def spatial_blocks(
    bounds: Sequence[tuple[float, float, float, float]], block_deg: float
) -> list[str]:
    """Return the spatial block id (``"blk:<col>:<row>"``) of each footprint's centre.

    Args:
        bounds: WGS84 footprints (west, south, east, north).
        block_deg: Side of a grid cell in degrees.
    """
    # The centre of an axis-aligned lon/lat box is the midpoint of its corners.
    centroids = gpd.GeoDataFrame(
        geometry=[Point((w + e) / 2.0, (s + n) / 2.0) for w, s, e, n in bounds], crs="EPSG:4326"
    ).reset_index(names="sample")
    west, south, east, north = centroids.total_bounds
    col0, row0 = int(np.floor(west / block_deg)), int(np.floor(south / block_deg))
    col1, row1 = int(np.floor(east / block_deg)), int(np.floor(north / block_deg))
    cells = [
        (c, r, box(c * block_deg, r * block_deg, (c + 1) * block_deg, (r + 1) * block_deg))
        for c in range(col0, col1 + 1)
        for r in range(row0, row1 + 1)
    ]
    grid = gpd.GeoDataFrame(
        {"block": [f"blk:{c}:{r}" for c, r, _ in cells]},
        geometry=[g for _, _, g in cells],
        crs="EPSG:4326",
    )
    joined = gpd.sjoin(centroids, grid, how="left", predicate="intersects")
    # A centroid on a cell edge touches several cells: keep the first block in a stable order.
    first = joined.sort_values(["sample", "block"]).drop_duplicates("sample")
    return first.sort_values("sample")["block"].astype(str).tolist()


def _stable_key(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def group_split(
    groups: Sequence[str], labels: Sequence[int], ratios: dict[str, float], seed: int
) -> list[str]:
    """Deal groups to splits, keeping each class near the target ratios.

    Groups are visited largest first (ties in a seeded, stable order); each goes to the split
    whose per-class shortfall, weighted by the group's class counts, is largest.

    Args:
        groups: Group id of each sample; samples of one group always share a split.
        labels: Class index of each sample (the primary label for multi-label samples).
        ratios: Target fraction per split name.
        seed: Seed of the tie-breaking order.

    Returns:
        The split name of each sample.
    """
    frame = pd.DataFrame({"group": list(groups), "label": list(labels)})
    classes = sorted(frame["label"].unique())
    counts = pd.crosstab(frame["group"], frame["label"]).reindex(columns=classes, fill_value=0)
    totals = counts.sum(axis=0).to_numpy(dtype=np.float64)
    names = [s for s in SPLIT_ORDER if s in ratios]
    target = np.array([[ratios[s] * t for t in totals] for s in names])
    current = np.zeros_like(target)
    order = sorted(
        counts.index, key=lambda g: (-int(counts.loc[g].sum()), _stable_key(seed, str(g)))
    )
    assignment: dict[str, str] = {}
    for g in order:
        vec = counts.loc[g].to_numpy(dtype=np.float64)
        shortfall = ((target - current) * vec).sum(axis=1) / max(vec.sum(), 1.0)
        # Relative shortfall, so a small split still gets groups once it is the most behind.
        shortfall = shortfall / np.maximum(target.sum(axis=1), 1e-9)
        choice = int(np.argmax(shortfall))
        assignment[str(g)] = names[choice]
        current[choice] += vec
    return [assignment[str(g)] for g in frame["group"]]
