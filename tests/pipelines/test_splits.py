from __future__ import annotations

from collections import Counter

import numpy as np

from msrgb_bench.pipelines.splits import group_split, spatial_blocks


def test_spatial_blocks_follow_the_grid() -> None:
    bounds = [
        (0.1, 0.1, 0.2, 0.2),
        (0.7, 0.8, 0.9, 0.9),
        (1.2, 0.1, 1.3, 0.2),
        (-0.6, -0.4, -0.5, -0.3),
    ]
    assert spatial_blocks(bounds, 1.0) == ["blk:0:0", "blk:0:0", "blk:1:0", "blk:-1:-1"]
    assert spatial_blocks(bounds, 0.5) == ["blk:0:0", "blk:1:1", "blk:2:0", "blk:-2:-1"]


def test_group_split_keeps_groups_together_and_hits_ratios() -> None:
    rng = np.random.default_rng(1)
    groups = [f"g{int(g)}" for g in rng.integers(0, 300, size=3000)]
    labels = [int(x) for x in rng.integers(0, 5, size=3000)]
    ratios = {"train": 0.6, "val": 0.2, "test": 0.2}
    splits = group_split(groups, labels, ratios, seed=3)
    by_group: dict[str, set[str]] = {}
    for g, s in zip(groups, splits, strict=True):
        by_group.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in by_group.values())
    counts = Counter(splits)
    for name, ratio in ratios.items():
        assert abs(counts[name] / len(splits) - ratio) < 0.02
    # Per class too.
    for c in range(5):
        in_class = [s for s, lab in zip(splits, labels, strict=True) if lab == c]
        assert abs(in_class.count("test") / len(in_class) - 0.2) < 0.05
    # Seeded: same seed, same answer; another seed, another one.
    assert group_split(groups, labels, ratios, seed=3) == splits
    assert group_split(groups, labels, ratios, seed=4) != splits
