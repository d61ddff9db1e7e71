from __future__ import annotations

import numpy as np

from msrgb_bench.pipelines.dedup import duplicates_to_remove, near_duplicate_pairs


def _thumb(value: int) -> bytes:
    return np.full(64, value, dtype=np.uint8).tobytes()


def test_pairs_match_brute_force_hamming() -> None:
    rng = np.random.default_rng(0)
    base = [int(x) for x in rng.integers(0, 2**63, size=40, dtype=np.int64)]
    # Near copies of the first three hashes: flip 1, 3 and 6 bits.
    hashes = [*base, base[0] ^ 0b1, base[1] ^ 0b10101, base[2] ^ 0b111111]
    thumbs = [_thumb(100)] * len(hashes)
    pairs = near_duplicate_pairs(hashes, thumbs, max_distance=4)
    brute = [
        (i, j)
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if (hashes[i] ^ hashes[j]).bit_count() <= 4
    ]
    assert pairs == brute
    assert (0, 40) in pairs and (1, 41) in pairs and (2, 42) not in pairs


def test_thumbnail_check_rejects_hash_collisions() -> None:
    hashes = [0b1011, 0b1011]
    assert near_duplicate_pairs(hashes, [_thumb(10), _thumb(12)], 0) == [(0, 1)]
    assert near_duplicate_pairs(hashes, [_thumb(10), _thumb(200)], 0) == []


def test_removal_keeps_highest_priority_partition_only_across_partitions() -> None:
    partitions = ["ms/train", "rgb/test", "rgb/train", "rgb/train", "rgb/val"]
    pairs = [(0, 1), (1, 4), (2, 3)]  # group {0,1,4} spans 3 partitions; {2,3} one partition
    priority = ["ms/train", "ms/val", "ms/test", "rgb/train", "rgb/val", "rgb/test"]
    assert duplicates_to_remove(5, pairs, partitions, priority) == [1, 4]
