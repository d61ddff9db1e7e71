"""EuroSAT (Helber et al. 2019): Sentinel-2 scenes of 10 land-use classes over Europe.

Two releases of the same 27,000 64x64 chips, one source each:

* ``eurosat-ms``: the 13-band L1C GeoTIFFs (uint16, TOA reflectance x 10000, UTM CRS, ~10 m).
  Band order inside the files: B01..B12 then B8A (B8A is *last*; see public_sources.md).
  Archive ``EuroSATallBands.zip`` (torchgeo's Hub mirror, md5 as pinned by torchgeo), laid out as
  ``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/<Class>_<n>.tif``.
* ``eurosat-rgb``: the RGB JPEGs (bands B04, B03, B02 scaled to 8 bit by the authors). Archive
  ``EuroSAT.zip`` (the Hub mirror torchvision downloads), laid out as
  ``2750/<Class>/<Class>_<n>.jpg``.

Both give every chip the place key ``eurosat:<Class>_<n>``: the same id in MS and RGB is the same
place, so a build can keep teacher and student places apart.
"""

from __future__ import annotations

from typing import ClassVar

from msrgb_bench.pipelines.sources.base import (
    ClassFolderSource,
    RemoteFile,
    register_source,
)

CLASSES = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)  # fmt: skip
MS_BANDS = (
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B09",
    "B10",
    "B11",
    "B12",
    "B8A",
)
RGB_BANDS = ("R", "G", "B")
CHIP_SIZE = (64, 64)

_HF_REPO = "torchgeo/eurosat"
_MS_REVISION = "1ce6f1bfb56db63fd91b6ecc466ea67f2509774c"
_RGB_REVISION = "c877bcd43f099cd0196738f714544e355477f3fd"


class _EuroSAT(ClassFolderSource):
    """What both EuroSAT releases share: classes, naming, provenance."""

    class_names = CLASSES
    chip_size = CHIP_SIZE
    stem_pattern = r"{cls}_\d+"
    place_prefix = "eurosat"
    homepage = "https://github.com/phelber/EuroSAT"
    region = "Europe"
    license = (
        "MIT (EuroSAT, Patrick Helber); contains modified Copernicus Sentinel data, see the "
        "Copernicus Sentinel Data Terms and Conditions"
    )
    citation = (
        "Helber, P., Bischke, B., Dengel, A., Borth, D. EuroSAT: A Novel Dataset and Deep Learning "
        "Benchmark for Land Use and Land Cover Classification. IEEE Journal of Selected Topics in "
        "Applied Earth Observations and Remote Sensing 12(7), 2217-2226, 2019. "
        "doi:10.1109/JSTARS.2019.2918242"
    )


@register_source
class EuroSATMS(_EuroSAT):
    """EuroSAT multispectral: 13-band uint16 GeoTIFFs, 64x64, UTM."""

    name = "eurosat-ms"
    modality = "ms"
    title = "EuroSAT MS (Sentinel-2 L1C, 13 bands)"
    band_names = MS_BANDS
    suffixes: ClassVar[tuple[str, ...]] = (".tif",)
    archive_root = "ds/images/remote_sensing/otherDatasets/sentinel_2/tif"
    dtypes: ClassVar[tuple[str, ...]] = ("uint16",)
    files = (
        RemoteFile.on_hub(
            _HF_REPO, _MS_REVISION, "EuroSATallBands.zip", md5="5ac12b3b2557aa56e1826e981e8e200e"
        ),
    )


@register_source
class EuroSATRGB(_EuroSAT):
    """EuroSAT RGB: 8-bit JPEGs, 64x64, no georeference."""

    name = "eurosat-rgb"
    modality = "rgb"
    title = "EuroSAT RGB (Sentinel-2 B04/B03/B02, JPEG)"
    band_names = RGB_BANDS
    suffixes: ClassVar[tuple[str, ...]] = (".jpg",)
    archive_root = "2750"
    files = (
        RemoteFile.on_hub(
            _HF_REPO, _RGB_REVISION, "EuroSAT.zip", md5="c8fa014336c82ac7804f0398fcb19387"
        ),
    )
