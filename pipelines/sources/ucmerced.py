"""UC Merced Land Use (Yang & Newsam 2010): 2,100 aerial RGB scenes of 21 classes, USA.

Archive ``UCMerced_LandUse.zip`` (torchgeo's Hub mirror, md5 as pinned by torchgeo), laid out as
``UCMerced_LandUse/Images/<class>/<class>NN.tif`` (NN = 00..99). The TIFFs are 8-bit RGB without
georeference, 1 ft (~0.3 m) pixels. 44 of them are not 256x256 (242..257 px on a side): they are
returned as read, the build resizes. Place key: ``ucmerced:<class>NN``.
"""

from __future__ import annotations

from typing import ClassVar

from msrgb_bench.pipelines.sources.base import (
    ClassFolderSource,
    RemoteFile,
    register_source,
)

CLASSES = (
    "agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral",
    "denseresidential", "forest", "freeway", "golfcourse", "harbor", "intersection",
    "mediumresidential", "mobilehomepark", "overpass", "parkinglot", "river", "runway",
    "sparseresidential", "storagetanks", "tenniscourt",
)  # fmt: skip
RGB_BANDS = ("R", "G", "B")

_HF_REPO = "torchgeo/ucmerced"
_REVISION = "7c5ef3454d9b1cccfa7ccde0c01fc8f00a45909a"


@register_source
class UCMerced(ClassFolderSource):
    """UC Merced Land Use: 8-bit RGB TIFFs, ~256x256, USA aerial imagery."""

    name = "ucmerced"
    modality = "rgb"
    title = "UC Merced Land Use"
    homepage = "http://weegee.vision.ucmerced.edu/datasets/landuse.html"
    region = "USA"
    license = (
        "other: research use (authors' terms); imagery from the USGS National Map Urban Area "
        "Imagery collection, public domain"
    )
    citation = (
        "Yang, Y., Newsam, S. Bag-of-visual-words and spatial extensions for land-use "
        "classification. ACM SIGSPATIAL GIS 2010, 270-279. doi:10.1145/1869790.1869829"
    )
    band_names = RGB_BANDS
    class_names = CLASSES
    suffixes: ClassVar[tuple[str, ...]] = (".tif",)
    stem_pattern = r"{cls}\d{2}"
    place_prefix = "ucmerced"
    archive_root = "UCMerced_LandUse/Images"
    files = (
        RemoteFile.on_hub(
            _HF_REPO, _REVISION, "UCMerced_LandUse.zip", md5="5b7ec56793786b6dc8a908e8854ac0e4"
        ),
    )
