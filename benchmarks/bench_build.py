"""Build throughput and memory of ``msrgb build-dataset`` on the synthetic demo source.

Prints, for a demo build of ``--size`` (default ``eurosat``: 27,000 chips):

* chips/s of the build with 1 worker, against a bare rasterio read of the MS files it wrote
  (ratio build / bare read: the build generates, validates, hashes, splits and writes each chip);
* the speed-up of ``--workers 2`` over 1 (byte-identical manifests are checked too);
* peak memory (max RSS) of a build at ``--small-size`` and at ``--size``, and their ratio, which
  should stay near 1: images are never held in memory.

Each build runs in a fresh subprocess so its peak RSS is its own.

Usage: python benchmarks/bench_build.py [--size eurosat] [--small-size small]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from msrgb_bench.pipelines.build import build_dataset
out, size, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = int(size) if size.isdigit() else size
t = time.perf_counter()
report = build_dataset("demo", out, size=size, workers=workers, progress=False)
seconds = time.perf_counter() - t
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
peak_kb = max(own, workers)
print(json.dumps({"chips": report.total, "seconds": seconds, "peak_mb": peak_kb / 1024}))
"""


def build(out: Path, size: str, workers: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), size, str(workers)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def bare_read(root: Path) -> tuple[int, float]:
    import rasterio

    files = sorted((root / "ms").rglob("*.tif"))
    start = time.perf_counter()
    for path in files:
        with rasterio.open(path) as src:
            src.read()
    return len(files), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="eurosat")
    parser.add_argument("--small-size", default="small")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one = build(root / "w1", args.size, 1)
        two = build(root / "w2", args.size, 2)
        small = build(root / "small", args.small_size, 1)
        same = (root / "w1" / "manifest.parquet").read_bytes() == (
            root / "w2" / "manifest.parquet"
        ).read_bytes()
        n_read, t_read = bare_read(root / "w1")
    build_rate = one["chips"] / one["seconds"]
    read_rate = n_read / t_read
    print(f"demo build, size={args.size}: {int(one['chips'])} chips")
    print(f"  build, 1 worker : {build_rate:9.1f} chips/s  ({one['seconds']:.1f} s)")
    print(
        f"  build, 2 workers: {two['chips'] / two['seconds']:9.1f} chips/s  "
        f"({two['seconds']:.1f} s)"
    )
    print(f"  bare rasterio read of the {n_read} MS GeoTIFFs: {read_rate:9.1f} chips/s")
    print(f"  ratio build(1 worker) / bare read : {build_rate / read_rate:.3f}")
    print(f"  speed-up 2 workers / 1 worker     : {one['seconds'] / two['seconds']:.2f}x")
    print(f"  manifests identical (1 vs 2 workers): {same}")
    print(
        f"  peak memory: {small['peak_mb']:.0f} MB at {int(small['chips'])} chips, "
        f"{one['peak_mb']:.0f} MB at {int(one['chips'])} chips "
        f"(ratio {one['peak_mb'] / small['peak_mb']:.2f})"
    )


if __name__ == "__main__":
    main()
