"""EuroSAT MS and RGB: real sample, packed as the release archives, downloaded from the FakeHub."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fakehub import FakeHub
from PIL import Image
from pyproj import Transformer
from source_archives import Archive, pinned

from msrgb_bench.pipelines.sources import SourceItem, create_source
from msrgb_bench.pipelines.sources.eurosat import CLASSES, EuroSATMS, EuroSATRGB

# Mean of each band over the 200 sample chips, as measured independently in PROVENANCE.md.
PROVENANCE_BAND_MEANS = (1365, 1133, 1068, 973, 1232, 2029, 2391, 2317, 740, 12, 1874, 1166, 2613)


@pytest.fixture(scope="module")
def eurosat_ms(
    hub: FakeHub, archives: dict[str, Archive], tmp_path_factory: pytest.TempPathFactory
) -> tuple[object, list[SourceItem]]:
    with pytest.MonkeyPatch.context() as mp:  # module-scoped hub_online
        import huggingface_hub.constants

        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        source = create_source(
            "eurosat-ms",
            cache_dir=tmp_path_factory.mktemp("cache"),
            files=pinned(EuroSATMS, archives["eurosat-ms"]),
            endpoint=hub.url,
            options={"progress": False},
        )
        root = source.prepare()
    return source, source.items(root)


def test_eurosat_ms_download_gives_the_release_layout_and_provenance(
    eurosat_ms: tuple[EuroSATMS, list[SourceItem]], archives: dict[str, Archive], sample: Path
) -> None:
    source, items = eurosat_ms
    assert source.used_files == {"EuroSATallBands.zip": archives["eurosat-ms"].sha256}
    assert len(items) == 200
    assert Counter(item.class_name for item in items) == dict.fromkeys(CLASSES, 20)
    expected = sorted(f"{p.parent.name}/{p.stem}" for p in (sample / "eurosat_ms").glob("*/*.tif"))
    assert [item.key for item in items] == expected
    for item in items:
        assert item.place == f"eurosat:{item.key.split('/')[1]}"
        assert item.source_path == f"{item.key}.tif"
        assert item.path.is_absolute() and item.path.is_file()
        assert item.path.parent.parent.as_posix().endswith(EuroSATMS.archive_root)
        assert item.labels == ()
        assert item.source == "eurosat-ms"


def test_eurosat_ms_chips_have_the_real_bands_crs_and_values(
    eurosat_ms: tuple[EuroSATMS, list[SourceItem]],
) -> None:
    source, items = eurosat_ms
    chips = [source.read(item) for item in items]
    for chip in chips:
        assert chip.array.shape == (13, 64, 64)
        assert chip.array.dtype == np.uint16
        assert chip.band_names == EuroSATMS.band_names
        assert chip.crs is not None
        assert 32629 <= int(chip.crs.removeprefix("EPSG:")) <= 32636  # UTM 29N..36N
        assert chip.transform is not None
        assert 9.9 < chip.transform[1] < 10.1 and -10.1 < chip.transform[5] < -9.9
    means = np.stack([c.array for c in chips]).mean(axis=(0, 2, 3))
    assert np.round(means).astype(int).tolist() == list(PROVENANCE_BAND_MEANS)
    assert EuroSATMS.band_names[9] == "B10" and EuroSATMS.band_names[12] == "B8A"

    # The footprint is the chip's WGS84 box: its centre pixel, projected independently, lies in it.
    for chip in chips[::20]:
        assert chip.lonlat_bounds is not None and chip.transform is not None and chip.crs
        west, south, east, north = chip.lonlat_bounds
        x0, dx, _, y0, _, dy = chip.transform
        lon, lat = Transformer.from_crs(chip.crs, "EPSG:4326", always_xy=True).transform(
            x0 + 32 * dx, y0 + 32 * dy
        )
        assert west < lon < east and south < lat < north
        assert -11 < west < east < 36 and 35 < south < north < 72  # Europe
        assert 0.0005 < east - west < 0.02  # 640 m


@pytest.fixture(scope="module")
def eurosat_rgb(
    hub: FakeHub, archives: dict[str, Archive], tmp_path_factory: pytest.TempPathFactory
) -> tuple[EuroSATRGB, list[SourceItem]]:
    with pytest.MonkeyPatch.context() as mp:
        import huggingface_hub.constants

        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        source = create_source(
            "eurosat-rgb",
            cache_dir=tmp_path_factory.mktemp("cache"),
            files=pinned(EuroSATRGB, archives["eurosat-rgb"]),
            endpoint=hub.url,
            options={"progress": False},
        )
        root = source.prepare()
    assert isinstance(source, EuroSATRGB)
    return source, source.items(root)


def test_eurosat_rgb_download_items_and_read(
    eurosat_rgb: tuple[EuroSATRGB, list[SourceItem]], archives: dict[str, Archive]
) -> None:
    source, items = eurosat_rgb
    assert source.used_files == {"EuroSAT.zip": archives["eurosat-rgb"].sha256}
    assert len(items) == 2000
    assert Counter(item.class_name for item in items) == dict.fromkeys(CLASSES, 200)
    assert all(item.path.parent.parent.name == "2750" for item in items)
    for item in items[::97]:
        chip = source.read(item)
        assert chip.array.shape == (3, 64, 64)
        assert chip.array.dtype == np.uint8
        assert chip.band_names == ("R", "G", "B")
        assert chip.crs is None and chip.transform is None and chip.lonlat_bounds is None
        # The pixels Pillow decodes (libjpeg builds differ by a unit or two in chroma).
        with Image.open(item.path) as image:
            reference = np.asarray(image.convert("RGB")).transpose(2, 0, 1).astype(float)
        assert np.abs(chip.array - reference).mean() < 2.0
        assert np.corrcoef(chip.array.ravel(), reference.ravel())[0, 1] > 0.99


def test_ms_and_rgb_places_are_recognised_as_the_same_or_not(
    eurosat_ms: tuple[EuroSATMS, list[SourceItem]],
    eurosat_rgb: tuple[EuroSATRGB, list[SourceItem]],
    sample: Path,
    tmp_path: Path,
) -> None:
    ms_places = {item.place for item in eurosat_ms[1]}
    # The unpaired sample shows other places than the MS chips ...
    assert ms_places.isdisjoint(item.place for item in eurosat_rgb[1])
    # ... the paired sample (given as a folder of class folders) the very same ones.
    paired = EuroSATRGB(path=sample / "eurosat_rgb_paired", cache_dir=tmp_path)
    paired_items = paired.items(paired.prepare())
    assert {item.place for item in paired_items} == ms_places
    assert {item.key for item in paired_items} == {item.key for item in eurosat_ms[1]}
