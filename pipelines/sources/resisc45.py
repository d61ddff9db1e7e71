"""NWPU-RESISC45 (Cheng, Han & Lu 2017): 31,500 Google Earth RGB scenes of 45 classes, global.

Archive ``NWPU-RESISC45.zip`` (the Hub mirror torchgeo downloads, md5 as pinned by torchgeo), laid
out as ``NWPU-RESISC45/<class>/<class>_NNN.jpg``: 700 JPEGs of 256x256 per class, no georeference.
Place key: ``resisc45:<class>_NNN``.
"""

from __future__ import annotations

from typing import ClassVar

from msrgb_bench.pipelines.sources.base import (
    ClassFolderSource,
    RemoteFile,
    register_source,
)

CLASSES = (
    "airplane", "airport", "baseball_diamond", "basketball_court", "beach", "bridge", "chaparral",
    "church", "circular_farmland", "cloud", "commercial_area", "dense_residential", "desert",
    "forest", "freeway", "golf_course", "ground_track_field", "harbor", "industrial_area",
    "intersection", "island", "lake", "meadow", "medium_residential", "mobile_home_park",
    "mountain", "overpass", "palace", "parking_lot", "railway", "railway_station",
    "rectangular_farmland", "river", "roundabout", "runway", "sea_ice", "ship", "snowberg",
    "sparse_residential", "stadium", "storage_tank", "tennis_court", "terrace",
    "thermal_power_station", "wetland",
)  # fmt: skip
RGB_BANDS = ("R", "G", "B")
CHIP_SIZE = (256, 256)

_HF_REPO = "isaaccorley/resisc45"
_REVISION = "883edc0eee77b2c84225472f10f126e3ed83fa6e"


@register_source
class RESISC45(ClassFolderSource):
    """NWPU-RESISC45: 8-bit RGB JPEGs, 256x256, worldwide."""

    name = "resisc45"
    modality = "rgb"
    title = "NWPU-RESISC45"
    homepage = "https://doi.org/10.1109/JPROC.2017.2675998"
    region = "Global"
    license = (
        "CC-BY-NC-4.0 (as listed by torchgeo; the authors publish no licence text): "
        "non-commercial research use"
    )
    citation = (
        "Cheng, G., Han, J., Lu, X. Remote Sensing Image Scene Classification: Benchmark and State "
        "of the Art. Proceedings of the IEEE 105(10), 1865-1883, 2017. "
        "doi:10.1109/JPROC.2017.2675998"
    )
    band_names = RGB_BANDS
    class_names = CLASSES
    suffixes: ClassVar[tuple[str, ...]] = (".jpg",)
    stem_pattern = r"{cls}_\d{3}"
    place_prefix = "resisc45"
    archive_root = "NWPU-RESISC45"
    chip_size = CHIP_SIZE
    files = (
        RemoteFile.on_hub(
            _HF_REPO, _REVISION, "NWPU-RESISC45.zip", md5="75206b2e16446591afa88e2628744886"
        ),
    )
