"""NaSC-TG2 (Zhou et al. 2021): 20,000 Tiangong-2 scenes of 10 natural-scene classes, 14-band MS.

The dataset is distributed by the China Manned Space Application data service after registration
(``http://www.msadc.cn/main/setsubDetail?id=1370312964720037889``). No checksum, licence or
sample of it is published, so nothing is pinned: it is used only through
``--source nasc-tg2=PATH``, where an archive is accepted unverified (its sha256 is recorded).

ASSUMED layout (from the authors' description: 10 classes x 2,000 scenes, 128x128 px at 100 m,
true-colour RGB images plus the corresponding 14-band multispectral images from the Tiangong-2
Wide-band Imaging Spectrometer; and from the SemBridge code, which reads 14-band rasters). Not
checked against a real copy::

    NaSC-TG2.zip
    └── NaSC-TG2/
        ├── MS/<class>/<class>_<n>.tif    14 bands, 128x128, uint16 (float32 also accepted)
        └── RGB/<class>/<class>_<n>.jpg   3 bands, 128x128 (not read by this source)

Classes (folder names): beach, circularfarmland, cloud, desert, forest, mountain,
rectangularfarmland, residential, river, snowberg. Any ``*.tif`` in a class folder is a sample;
georeference is used when the files carry a CRS. Should a real copy differ, the root is still found
anywhere inside the given folder (a folder of class folders with ``.tif`` files), and only
:data:`BANDS`, :data:`DTYPES` and :data:`CHIP_SIZE` need changing. Place key:
``nasc-tg2:<class>/<stem>`` (the same key for an MS file and an RGB file of one scene).
"""

from __future__ import annotations

from typing import ClassVar

from msrgb_bench.pipelines.sources.base import ClassFolderSource, register_source

CLASSES = (
    "beach", "circularfarmland", "cloud", "desert", "forest", "mountain",
    "rectangularfarmland", "residential", "river", "snowberg",
)  # fmt: skip
BANDS = tuple(f"B{i:02d}" for i in range(1, 15))  # the WIS VNIR channels, in file order
DTYPES = ("uint16", "float32")
CHIP_SIZE = (128, 128)


@register_source
class NaSCTG2(ClassFolderSource):
    """NaSC-TG2 multispectral: 14-band Tiangong-2 WIS rasters, 128x128 (assumed layout)."""

    name = "nasc-tg2"
    modality = "ms"
    title = "NaSC-TG2 (Tiangong-2 WIS, 14 bands)"
    homepage = "http://www.msadc.cn/main/setsubDetail?id=1370312964720037889"
    region = "China (Tiangong-2)"
    license = "unknown: none published; distributed after registration by the CMSA data service"
    citation = (
        "Zhou, Z., Li, S., Wu, W., Guo, W., Li, X., Xia, G., Zhao, Z. NaSC-TG2: Natural Scene "
        "Classification With Tiangong-2 Remotely Sensed Imagery. IEEE Journal of Selected Topics "
        "in Applied Earth Observations and Remote Sensing 14, 3228-3242, 2021. "
        "doi:10.1109/JSTARS.2021.3063096"
    )
    band_names = BANDS
    dtypes = DTYPES
    chip_size = CHIP_SIZE
    class_names = CLASSES
    suffixes: ClassVar[tuple[str, ...]] = (".tif", ".tiff")
    stem_pattern = r".+"
    place_prefix = "nasc-tg2"
    archive_root = "NaSC-TG2/MS"
    files = ()

    def place_key(self, class_name: str, stem: str) -> str:
        """Return ``nasc-tg2:<class>/<stem>`` (file names are not known to be unique)."""
        return f"{self.place_prefix}:{class_name}/{stem}"
