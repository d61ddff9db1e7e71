"""BigEarthNet-S2 v1.0 (Sumbul et al. 2019): 590,326 multi-label Sentinel-2 L2A patches, Europe.

Archive ``BigEarthNet-S2-v1.0.tar.gz`` (Zenodo record 12687186, md5 as pinned by torchgeo), laid out
as one folder per patch::

    BigEarthNet-v1.0/<patch>/<patch>_B01.tif ... <patch>_B12.tif, <patch>_B8A.tif
    BigEarthNet-v1.0/<patch>/<patch>_labels_metadata.json

Each patch has 12 single-band uint16 GeoTIFFs (no B10) on three grids: 120x120 at 10 m (B02, B03,
B04, B08), 60x60 at 20 m (B05, B06, B07, B8A, B11, B12) and 20x20 at 60 m (B01, B09). :meth:`read`
resamples every band bilinearly onto the 10 m grid, giving a (12, 120, 120) uint16 chip in the
documented order B01, B02, B03, B04, B05, B06, B07, B08, B8A, B09, B11, B12, with B02's CRS and
transform.

Labels are the 43-class CORINE names of the metadata's ``labels`` list. An item's ``class_name``
is its first label (BigEarthNet has no class folders) and ``labels`` holds all of them. Place key:
``bigearthnet:<patch>``. The release's lists of cloudy and snowy patches are separate downloads
and are not applied here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from msrgb_bench.errors import CorruptRasterError, SourceLayoutError
from msrgb_bench.pipelines.sources.base import (
    Chip,
    RemoteFile,
    Source,
    SourceItem,
    register_source,
)
from msrgb_bench.pipelines.sources.rasters import (
    check_content,
    crs_string,
    lonlat_bounds,
    read_band_resampled,
)

BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
# Native ground sampling distance of each band, in metres.
BAND_GSD = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20,
    "B07": 20, "B08": 10, "B8A": 20, "B09": 60, "B11": 20, "B12": 20,
}  # fmt: skip
PATCH_PX = 120  # pixels on a side at 10 m
REFERENCE_BAND = "B02"
METADATA_SUFFIX = "_labels_metadata.json"
# Tolerance (metres) between a band's footprint and the reference band's.
_FOOTPRINT_TOLERANCE = 1.0

# The 43 CORINE Land Cover classes of BigEarthNet v1.0, in the release's order.
CLASSES = (
    "Continuous urban fabric", "Discontinuous urban fabric", "Industrial or commercial units",
    "Road and rail networks and associated land", "Port areas", "Airports",
    "Mineral extraction sites", "Dump sites", "Construction sites", "Green urban areas",
    "Sport and leisure facilities", "Non-irrigated arable land", "Permanently irrigated land",
    "Rice fields", "Vineyards", "Fruit trees and berry plantations", "Olive groves", "Pastures",
    "Annual crops associated with permanent crops", "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest",
    "Natural grassland", "Moors and heathland", "Sclerophyllous vegetation",
    "Transitional woodland/shrub", "Beaches, dunes, sands", "Bare rock",
    "Sparsely vegetated areas", "Burnt areas", "Inland marshes", "Peatbogs", "Salt marshes",
    "Salines", "Intertidal flats", "Water courses", "Water bodies", "Coastal lagoons",
    "Estuaries", "Sea and ocean",
)  # fmt: skip


def _grid(bounds: Any) -> tuple[float, float, float, float, float, float]:
    """Return the GDAL geotransform of the 120x120 grid over ``bounds`` (north up)."""
    west, south, east, north = (float(v) for v in bounds)
    return (west, (east - west) / PATCH_PX, 0.0, north, 0.0, -(north - south) / PATCH_PX)


@register_source
class BigEarthNetS2(Source):
    """BigEarthNet-S2 v1.0: 12-band L2A patches, 120x120 at 10 m, multi-label."""

    name = "bigearthnet-s2"
    modality = "ms"
    title = "BigEarthNet-S2 v1.0 (Sentinel-2 L2A, 12 bands)"
    homepage = "https://bigearth.net"
    region = "Europe"
    license = (
        "CDLA-Permissive-1.0; contains modified Copernicus Sentinel data, see the Copernicus "
        "Sentinel Data Terms and Conditions"
    )
    citation = (
        "Sumbul, G., Charfuelan, M., Demir, B., Markl, V. BigEarthNet: A Large-Scale Benchmark "
        "Archive for Remote Sensing Image Understanding. IGARSS 2019, 5901-5904. "
        "doi:10.1109/IGARSS.2019.8900532"
    )
    band_names = BANDS
    multilabel = True
    class_names: ClassVar[tuple[str, ...]] = CLASSES
    archive_root = "BigEarthNet-v1.0"
    files = (
        RemoteFile(
            filename="BigEarthNet-S2-v1.0.tar.gz",
            url="https://zenodo.org/records/12687186/files/BigEarthNet-S2-v1.0.tar.gz",
            md5="5a64e9ce38deb036a435a7b59494924c",
        ),
    )

    @staticmethod
    def _metadata(patch_dir: Path) -> Path:
        return patch_dir / f"{patch_dir.name}{METADATA_SUFFIX}"

    def is_root(self, folder: Path) -> bool:
        """Return whether ``folder`` holds at least one patch folder with its labels metadata."""
        return any(child.is_dir() and self._metadata(child).is_file() for child in folder.iterdir())

    def layout_hint(self) -> str:
        """Describe the expected layout, for error messages."""
        return (
            f"expected {self.archive_root}/<patch>/<patch>_B02.tif ... and "
            f"<patch>/<patch>{METADATA_SUFFIX}"
        )

    def _labels(self, metadata: Path) -> tuple[str, ...]:
        try:
            data = json.loads(metadata.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SourceLayoutError(metadata, f"unreadable labels metadata ({exc})") from exc
        labels = data.get("labels") if isinstance(data, dict) else None
        if (
            not isinstance(labels, list)
            or not labels
            or not all(isinstance(x, str) for x in labels)
        ):
            raise SourceLayoutError(
                metadata, "no 'labels' list of class names in the labels metadata"
            )
        return tuple(label.strip() for label in labels)

    def items(self, root: Path) -> list[SourceItem]:
        """List every patch folder under ``root`` with its labels, sorted by patch name.

        Raises:
            SourceLayoutError: A patch folder lacks its labels metadata, the metadata is
                malformed, or no patch is found.
        """
        root = Path(root)
        found: list[SourceItem] = []
        for patch_dir in sorted(
            p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            metadata = self._metadata(patch_dir)
            if not metadata.is_file():
                if (patch_dir / f"{patch_dir.name}_{REFERENCE_BAND}.tif").is_file():
                    raise SourceLayoutError(
                        metadata, "missing: every patch folder needs its labels metadata"
                    )
                continue
            labels = self._labels(metadata)
            found.append(
                SourceItem(
                    source=self.name,
                    key=patch_dir.name,
                    class_name=labels[0],
                    path=patch_dir,
                    source_path=patch_dir.name,
                    place=f"bigearthnet:{patch_dir.name}",
                    labels=labels,
                )
            )
        if not found:
            raise SourceLayoutError(root, f"no BigEarthNet patches found ({self.layout_hint()})")
        return found

    def read(self, item: SourceItem) -> Chip:
        """Read the 12 bands of a patch onto the 10 m grid: (12, 120, 120) uint16.

        Raises:
            CorruptRasterError: A band file is missing, unreadable, not single-band uint16, not on
                its native grid (120/60/20 px), in another CRS or footprint than B02, or the
                patch is empty.
        """
        patch = item.path.name
        stack = np.empty((len(BANDS), PATCH_PX, PATCH_PX), dtype=np.uint16)
        grids = {}
        for index, band in enumerate(BANDS):
            path = item.path / f"{patch}_{band}.tif"
            native = PATCH_PX * 10 // BAND_GSD[band]
            array, crs, bounds = read_band_resampled(
                path, out_shape=(PATCH_PX, PATCH_PX), dtypes=("uint16",), size=(native, native)
            )
            stack[index] = array
            grids[band] = (path, crs, bounds)
        _, ref_crs, ref_bounds = grids[REFERENCE_BAND]
        for path, crs, bounds in grids.values():
            if crs != ref_crs:
                raise CorruptRasterError(
                    path,
                    f"CRS {crs_string(crs)} differs from {REFERENCE_BAND}'s {crs_string(ref_crs)}",
                )
            if (
                max(abs(a - b) for a, b in zip(bounds, ref_bounds, strict=True))
                > _FOOTPRINT_TOLERANCE
            ):
                raise CorruptRasterError(
                    path,
                    f"footprint {tuple(bounds)} differs from "
                    f"{REFERENCE_BAND}'s {tuple(ref_bounds)}",
                )
        check_content(item.path, stack)
        return Chip(
            array=stack,
            band_names=BANDS,
            crs=crs_string(ref_crs),
            transform=_grid(ref_bounds),
            lonlat_bounds=lonlat_bounds(ref_crs, ref_bounds),
        )
