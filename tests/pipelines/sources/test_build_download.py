"""End to end: build the real-sample recipes through the real download code (FakeHub)."""

from __future__ import annotations

from pathlib import Path

import pytest
from source_archives import Archive, pinned

from msrgb_bench.data.manifest import read_info, read_manifest
from msrgb_bench.pipelines.build import build_dataset
from msrgb_bench.pipelines.recipe import load_recipe
from msrgb_bench.pipelines.sources import source_class

EXPECTED = {
    # recipe: (MS samples, RGB samples, RGB classes dropped by the class map)
    "s2s-eu": (200, 2000, 0),
    "eu-ucm": (200, 50, 0),
    "eu-resisc": (200, 40, 30),
}


@pytest.mark.parametrize("recipe", sorted(EXPECTED))
def test_build_through_downloads(
    recipe: str, hub, archives: dict[str, Archive], hub_online: None, tmp_path: Path
) -> None:
    sources = load_recipe(recipe).sources
    files = {name: pinned(source_class(name), archives[name]) for name in sources}
    report = build_dataset(
        recipe,
        tmp_path / recipe,
        cache_dir=tmp_path / "cache",
        endpoint=hub.url,
        source_files=files,
        workers=2,
        progress=False,
    )
    manifest = read_manifest(report.out)
    n_ms, n_rgb, n_dropped = EXPECTED[recipe]
    assert (manifest["modality"] == "ms").sum() == n_ms
    assert (manifest["modality"] == "rgb").sum() == n_rgb
    assert sum(report.dropped_unmapped.values()) == n_dropped
    # Provenance: each archive's name and sha256 are recorded in dataset.json and the card.
    info = read_info(report.out)
    recorded = {f.name: f.sha256 for s in info.sources for f in s.files}
    for name in sources:
        archive = archives[name]
        assert recorded[archive.path.name] == archive.sha256
        assert archive.sha256 in (report.out / "README.md").read_text()
