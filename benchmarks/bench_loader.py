"""Samples/s of the MSRGBDataset DataLoader, packed and per-file, against a bare memmap read.

For each modality (train split) it prints the samples/s of:

* ``bare``: ``np.load(mmap_mode="r")`` of the packed array; for each batch of a shuffled epoch a
  new float32 array, each sample converted from the map into its row: the least any loader of
  this data has to do;
* ``packed``: a ``DataLoader`` over ``MSRGBDataset`` reading the packed array (workers 0 and 2);
* ``per-file``: the same over the GeoTIFF / PNG files (on a subset: it is slow).

and the ratio of each to ``bare``. Goal: packed at 0.8x of bare or better.

Usage::

    python benchmarks/bench_loader.py --data DIR        # a built dataset (packed if needed)
    python benchmarks/bench_loader.py                   # builds the demo (medium, ~6,000 chips)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from msrgb_bench.data.dataset import MSRGBDataset, collate_samples
from msrgb_bench.data.packed import PACKED_DIR, array_name, pack_dataset

BATCH = 64


def timed(run_epoch: Callable[[], int], repeats: int) -> float:
    """Samples/s of ``run_epoch`` (returns samples read), best of ``repeats`` after one warm-up."""
    run_epoch()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        count = run_epoch()
        best = max(best, count / (time.perf_counter() - start))
    return best


def bare_epoch(npy: Path, seed: int) -> Callable[[], int]:
    array = np.load(npy, mmap_mode="r")
    order = np.random.default_rng(seed).permutation(len(array))

    def run() -> int:
        for start in range(0, len(order) - BATCH + 1, BATCH):
            # A new batch each step (a training step keeps its batch), each sample converted
            # from the memory map straight into its row.
            batch = np.empty((BATCH, *array.shape[1:]), dtype=np.float32)
            for j, i in enumerate(order[start : start + BATCH]):
                batch[j] = array[i]
            torch.from_numpy(batch)
        return (len(order) // BATCH) * BATCH

    return run


def loader_epoch(dataset: torch.utils.data.Dataset, workers: int) -> Callable[[], int]:
    loader = DataLoader(
        dataset,
        batch_size=BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=collate_samples,  # as MSRGBDataModule builds its loaders
    )

    def run() -> int:
        count = 0
        for batch in loader:
            count += len(batch["image"])
        return count

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="Dataset folder (default: build the demo).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-file-samples", type=int, default=1024)
    args = parser.parse_args()
    torch.set_num_threads(1)

    data = args.data
    if data is None:
        from msrgb_bench.pipelines.build import build_dataset

        data = Path(tempfile.mkdtemp(prefix="bench-loader-")) / "demo"
        print(f"building the demo dataset (size medium) in {data} ...")
        build_dataset("demo", data, size="medium", progress=False)
    if not (data / PACKED_DIR).is_dir():
        print(f"packing {data} ...")
        pack_dataset(data)

    print(f"dataset {data}, batch size {BATCH}, torch threads 1")
    print(f"{'modality':8s} {'path':9s} {'workers':>7s} {'samples/s':>10s} {'x bare':>7s}")
    for modality in ("ms", "rgb"):
        packed = MSRGBDataset(data, "train", modality, packed=True)
        per_file = MSRGBDataset(data, "train", modality, packed=False)
        shape = tuple(packed[0]["image"].shape)
        bare = timed(bare_epoch(data / PACKED_DIR / array_name(modality, "train"), 0), args.repeats)
        size = f"{len(packed)} x {shape}"
        print(f"{modality:8s} {'bare':9s} {'-':>7s} {bare:10.0f} {1.0:7.2f}   {size}")
        for workers in (0, 2):
            rate = timed(loader_epoch(packed, workers), args.repeats)
            print(f"{modality:8s} {'packed':9s} {workers:7d} {rate:10.0f} {rate / bare:7.2f}")
        subset = Subset(per_file, range(min(args.per_file_samples, len(per_file))))
        for workers in (0, 2):
            rate = timed(loader_epoch(subset, workers), 1)
            print(f"{modality:8s} {'per-file':9s} {workers:7d} {rate:10.0f} {rate / bare:7.2f}")


if __name__ == "__main__":
    main()
