"""UC Merced and NWPU-RESISC45: real sample, packed as the release archives, from the FakeHub."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fakehub import FakeHub
from PIL import Image
from source_archives import Archive, pinned

from msrgb_bench.pipelines.sources import create_source
from msrgb_bench.pipelines.sources.base import ClassFolderSource
from msrgb_bench.pipelines.sources.resisc45 import RESISC45
from msrgb_bench.pipelines.sources.ucmerced import UCMerced

UCMERCED_SAMPLE = (
    "agricultural", "beach", "buildings", "chaparral", "denseresidential", "forest", "freeway",
    "mediumresidential", "river", "storagetanks",
)  # fmt: skip
RESISC45_SAMPLE = ("beach", "desert", "forest", "industrial_area", "lake", "mountain", "river")
SAMPLE_COUNTS = {
    "ucmerced": dict.fromkeys(UCMERCED_SAMPLE, 5),
    "resisc45": dict.fromkeys(RESISC45_SAMPLE, 10),
}
SOURCES: dict[str, type[ClassFolderSource]] = {"ucmerced": UCMerced, "resisc45": RESISC45}


@pytest.mark.parametrize("name", ["ucmerced", "resisc45"])
def test_download_items_and_read_real_scenes(
    name: str,
    hub: FakeHub,
    hub_online: None,
    archives: dict[str, Archive],
    sample: Path,
    tmp_path: Path,
) -> None:
    cls = SOURCES[name]
    source = create_source(
        name,
        cache_dir=tmp_path,
        files=pinned(cls, archives[name]),
        endpoint=hub.url,
        options={"progress": False},
    )
    root = source.prepare()
    assert root.as_posix().endswith(cls.archive_root)
    assert source.used_files == {cls.files[0].filename: archives[name].sha256}
    items = source.items(root)
    assert Counter(item.class_name for item in items) == SAMPLE_COUNTS[name]
    assert set(SAMPLE_COUNTS[name]) <= set(cls.class_names)
    expected = sorted(f"{p.parent.name}/{p.stem}" for p in (sample / name).glob("*/*.*"))
    assert [item.key for item in items] == expected
    assert all(item.place == f"{name}:{item.key.split('/')[1]}" for item in items)
    assert source.region == ("USA" if name == "ucmerced" else "Global")
    for item in items[::7]:
        chip = source.read(item)
        assert chip.array.shape == (3, 256, 256)
        assert chip.array.dtype == np.uint8
        assert chip.crs is None and chip.lonlat_bounds is None
        with Image.open(item.path) as image:
            reference = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
        if name == "ucmerced":  # lossless TIFF: exactly Pillow's pixels
            np.testing.assert_array_equal(chip.array, reference)
        else:  # JPEG: libjpeg builds differ by a unit or two in chroma
            assert np.abs(chip.array - reference.astype(float)).mean() < 2.0


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_ucmerced_keeps_an_off_size_scene_as_read(sample: Path, tmp_path: Path) -> None:
    """44 real UC Merced scenes are 242..257 px: the source returns them unresized."""
    import rasterio

    folder = tmp_path / "overpass"
    folder.mkdir()
    real = next((sample / "ucmerced" / "freeway").glob("*.tif"))
    with rasterio.open(real) as src:
        data = src.read()[:, :247, :247]
        profile = src.profile | {"height": 247, "width": 247}
    with rasterio.open(folder / "overpass64.tif", "w", **profile) as dst:
        dst.write(data)
    source = create_source("ucmerced", path=tmp_path, cache_dir=tmp_path / "cache")
    (item,) = source.items(source.prepare())
    chip = source.read(item)
    assert chip.array.shape == (3, 247, 247)
    np.testing.assert_array_equal(chip.array, data)
