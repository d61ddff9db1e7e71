"""Near-duplicate detection with perceptual hashes, across splits and modalities.

Two samples are near-duplicates when the Hamming distance of their 64-bit perceptual hashes is at
most ``max_distance`` *and* their 8x8 grayscale thumbnails differ by at most ``max_thumb_diff`` on
average (the second test keeps low-texture scenes such as open water, whose hashes are close by
chance, from being flagged).

Candidate pairs are found by multi-index hashing: the hash is cut into ``max_distance + 1`` blocks,
and by the pigeonhole principle two hashes within ``max_distance`` bits agree exactly on at least
one block, so only samples sharing a block value are compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

DEFAULT_MAX_THUMB_DIFF = 6.0


def _blocks(max_distance: int) -> list[tuple[int, int]]:
    parts = max_distance + 1
    edges = np.linspace(0, 64, parts + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(parts)]


def near_duplicate_pairs(
    hashes: Sequence[int],
    thumbs: Sequence[bytes],
    max_distance: int,
    max_thumb_diff: float = DEFAULT_MAX_THUMB_DIFF,
) -> list[tuple[int, int]]:
    """Return the sorted index pairs ``(i, j)``, ``i < j``, that are near-duplicates."""
    n = len(hashes)
    if n < 2 or max_distance < 0:
        return []
    values = [int(h) for h in hashes]
    candidates: set[tuple[int, int]] = set()
    for lo, hi in _blocks(max_distance):
        mask = (1 << (hi - lo)) - 1
        buckets: dict[int, list[int]] = defaultdict(list)
        for i, value in enumerate(values):
            buckets[(value >> lo) & mask].append(i)
        for members in buckets.values():
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    candidates.add((members[a], members[b]))
    pairs = []
    for i, j in sorted(candidates):
        if (values[i] ^ values[j]).bit_count() > max_distance:
            continue
        ti = np.frombuffer(thumbs[i], dtype=np.uint8).astype(np.float64)
        tj = np.frombuffer(thumbs[j], dtype=np.uint8).astype(np.float64)
        if float(np.abs(ti - tj).mean()) <= max_thumb_diff:
            pairs.append((i, j))
    return pairs


def duplicates_to_remove(
    n: int, pairs: Sequence[tuple[int, int]], partitions: Sequence[str], priority: Sequence[str]
) -> list[int]:
    """Choose which samples to drop so no near-duplicate group spans two partitions.

    Within each connected group of near-duplicates that touches more than one partition (a
    partition is a modality/split, e.g. ``"rgb/test"``), the members of the partition that comes
    first in ``priority`` are kept and all others are removed. Duplicates inside one partition
    are kept: they cannot leak.

    Args:
        n: Number of samples.
        pairs: Near-duplicate index pairs.
        partitions: Partition name of each sample.
        priority: Partition names, most important first.

    Returns:
        Sorted indices to remove.
    """
    if not pairs:
        return []
    rows = np.array([p[0] for p in pairs])
    cols = np.array([p[1] for p in pairs])
    graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    rank = {name: i for i, name in enumerate(priority)}
    members: dict[int, list[int]] = defaultdict(list)
    for i in sorted(set(rows.tolist()) | set(cols.tolist())):
        members[int(group[i])].append(i)
    remove: list[int] = []
    for idx in members.values():
        parts = {partitions[i] for i in idx}
        if len(parts) < 2:
            continue
        keep = min(parts, key=lambda p: rank.get(p, len(rank)))
        remove.extend(i for i in idx if partitions[i] != keep)
    return sorted(remove)
