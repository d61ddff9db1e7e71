"""The offline demo source: synthetic, georeferenced Sentinel-2-like scenes and unpaired RGB.

Nothing is downloaded. Every chip is generated on the fly, deterministically from (seed, class,
index), as a scene of shapely geometries (fields, rivers, roads, buildings, orchards, shores)
rasterized with rasterio, filled with class-conditional spectra and spatially correlated noise.

* ``synthetic-ms`` writes 13-band uint16 chips in EuroSAT band order (B01..B12, B8A), placed in
  Europe, with a UTM CRS and a 10 m geotransform.
* ``synthetic-rgb`` renders the same kind of scenes at *other places* (North America) through a
  different simulated sensor: its own spectral response, gain, white balance and a softer PSF.

Spectra: per class and band, the mean, within-chip and between-chip standard deviations were
measured on the 200 real EuroSAT MS chips of the offline sample (20 per class); only those numbers
are kept here. Two pairs of classes are made to differ mainly outside the visible range, so the
MS teacher carries information the RGB student lacks:

* Pasture vs HerbaceousVegetation: same layout, visible bands pulled to their common mean.
* River vs Highway: a line across a vegetated background; water and asphalt get nearly the same
  visible reflectance but differ strongly in NIR and SWIR.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from scipy.ndimage import gaussian_filter
from shapely import affinity
from shapely.geometry import LineString, Point, box
from shapely.geometry.base import BaseGeometry

from msrgb_bench.pipelines.sources.base import Chip, Source, SourceItem, register_source
from msrgb_bench.pipelines.sources.eurosat import CLASSES, MS_BANDS

# The demo copies EuroSAT's class names and band order.
EUROSAT_BANDS = MS_BANDS

# Per-class band means (TOA reflectance x 10000) of the real EuroSAT sample, EuroSAT band order.
CLASS_MEAN: dict[str, tuple[int, ...]] = {
    "AnnualCrop": (1499, 1352, 1390, 1531, 1806, 2704, 3181, 3066, 822, 14, 2855, 1906, 3493),
    "Forest": (1099, 801, 687, 403, 753, 2122, 2695, 2645, 867, 9, 1290, 529, 3003),
    "HerbaceousVegetation": (
        1345,
        1124,
        1066,
        1034,
        1360,
        2090,
        2394,
        2396,
        1038,
        17,
        2368,
        1432,
        2690,
    ),
    "Highway": (1395, 1180, 1125, 1103, 1369, 2181, 2556, 2491, 821, 12, 2120, 1357, 2802),
    "Industrial": (1624, 1413, 1319, 1304, 1449, 1954, 2195, 2081, 588, 13, 2041, 1482, 2352),
    "Pasture": (1308, 1023, 964, 684, 1207, 2790, 3402, 3346, 1117, 12, 2045, 998, 3780),
    "PermanentCrop": (1432, 1257, 1298, 1395, 1683, 2498, 2894, 2809, 858, 14, 2806, 1878, 3174),
    "Residential": (1451, 1213, 1122, 1093, 1291, 1956, 2258, 2146, 600, 12, 1988, 1414, 2437),
    "River": (1312, 1038, 904, 689, 883, 1611, 1951, 1880, 599, 9, 1147, 612, 2105),
    "SeaLake": (1191, 929, 802, 493, 520, 383, 383, 314, 84, 7, 85, 50, 291),
}
# Mean within-chip spatial standard deviation per band.
CLASS_WITHIN: dict[str, tuple[int, ...]] = {
    "AnnualCrop": (97, 188, 235, 457, 371, 382, 527, 528, 87, 1, 559, 535, 540),
    "Forest": (9, 26, 48, 47, 68, 250, 340, 432, 72, 1, 176, 87, 385),
    "HerbaceousVegetation": (42, 105, 136, 196, 166, 213, 248, 298, 74, 1, 305, 240, 274),
    "Highway": (101, 219, 257, 399, 317, 455, 592, 689, 130, 1, 470, 406, 654),
    "Industrial": (165, 400, 438, 551, 377, 425, 507, 648, 90, 1, 454, 419, 565),
    "Pasture": (28, 69, 94, 166, 154, 383, 523, 603, 114, 1, 295, 211, 569),
    "PermanentCrop": (77, 183, 245, 394, 305, 269, 323, 372, 58, 1, 447, 418, 340),
    "Residential": (56, 188, 206, 293, 168, 274, 355, 514, 63, 1, 268, 261, 406),
    "River": (61, 139, 191, 260, 291, 758, 980, 1079, 264, 1, 709, 416, 1142),
    "SeaLake": (15, 31, 40, 38, 45, 111, 136, 140, 34, 1, 89, 49, 153),
}
# Standard deviation of chip means between chips of one class, as a fraction of the class mean
# (median over bands of the measured between-chip std / mean).
CLASS_SPREAD: dict[str, float] = {
    "AnnualCrop": 0.17, "Forest": 0.12, "HerbaceousVegetation": 0.20, "Highway": 0.19,
    "Industrial": 0.15, "Pasture": 0.14, "PermanentCrop": 0.15, "Residential": 0.15,
    "River": 0.17, "SeaLake": 0.20,
}  # fmt: skip

VISIBLE = slice(0, 4)  # B01..B04
NIR_SWIR = [4, 5, 6, 7, 8, 10, 11, 12]  # B05..B09, B11, B12, B8A
# Fraction of the visible-band difference kept between the two members of a confusable pair.
VISIBLE_KEEP = 0.12

# Named sizes: samples per class for (MS, RGB).
SIZES: dict[str, tuple[int, int]] = {
    "tiny": (12, 16),
    "small": (40, 60),
    "medium": (300, 300),
    "eurosat": (1350, 1350),  # 27,000 chips in all, EuroSAT's size
}

MS_REGION = (-5.0, 42.0, 25.0, 58.0)  # Europe (west, south, east, north)
RGB_REGION = (-120.0, 30.0, -75.0, 48.0)  # North America


def _materials() -> dict[str, np.ndarray]:
    """Return the spectra of the scene materials, derived from the class means."""
    mean = {k: np.asarray(v, dtype=np.float64) for k, v in CLASS_MEAN.items()}
    soil = mean["AnnualCrop"].copy()
    soil[VISIBLE] *= 1.15
    soil[[4, 5, 6, 7, 12]] *= 0.55
    soil[[10, 11]] *= 1.25
    road = mean["Industrial"].copy()
    road[[10, 11]] *= 1.15
    water = mean["SeaLake"].copy()
    # Confusable pair 1: water vs asphalt, nearly the same (dark) visible reflectance.
    common = np.minimum(water[VISIBLE], road[VISIBLE])
    water[VISIBLE] = common + VISIBLE_KEEP * (water[VISIBLE] - common)
    road[VISIBLE] = common + VISIBLE_KEEP * (road[VISIBLE] - common)
    # Confusable pair 2: pasture vs herbaceous vegetation.
    pasture, herb = mean["Pasture"].copy(), mean["HerbaceousVegetation"].copy()
    common = (pasture[VISIBLE] + herb[VISIBLE]) / 2.0
    pasture[VISIBLE] = common + VISIBLE_KEEP * (pasture[VISIBLE] - common)
    herb[VISIBLE] = common + VISIBLE_KEEP * (herb[VISIBLE] - common)
    return {
        "crop": mean["AnnualCrop"],
        "soil": soil,
        "forest": mean["Forest"],
        "forest_dark": mean["Forest"] * 0.85,
        "herb": herb,
        "pasture": pasture,
        "orchard_ground": mean["PermanentCrop"],
        "tree": (mean["Forest"] + mean["PermanentCrop"]) / 2.0,
        "road": road,
        "water": water,
        "roof_industrial": mean["Industrial"] * 1.12,
        "roof_house": mean["Residential"] * 1.05,
        "urban_ground": (mean["Residential"] + herb) / 2.0,
        "meadow": (herb + pasture) / 2.0,
    }


MATERIALS = _materials()
MATERIAL_NAMES = tuple(MATERIALS)
SPECTRA = np.stack([MATERIALS[n] for n in MATERIAL_NAMES])  # (M, 13)
_M = {name: i for i, name in enumerate(MATERIAL_NAMES)}


def _random_line(rng: np.random.Generator, size: int, wiggle: float) -> LineString:
    """Return a line crossing the chip, meandering by ``wiggle`` pixels."""
    angle = rng.uniform(0, math.pi)
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    steps = np.linspace(-0.8 * size, 0.8 * size, 12)
    offsets = np.cumsum(rng.normal(0, wiggle, steps.size))
    xs = cx + steps * math.cos(angle) - offsets * math.sin(angle)
    ys = cy + steps * math.sin(angle) + offsets * math.cos(angle)
    return LineString(np.column_stack([xs, ys]))


def _blobs(
    rng: np.random.Generator, size: int, count: int, radius: tuple[float, float]
) -> list[BaseGeometry]:
    blobs: list[BaseGeometry] = []
    for _ in range(count):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(*radius)
        blob = Point(x, y).buffer(r, quad_segs=6)
        blobs.append(affinity.scale(blob, rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4)))
    return blobs


def scene_layout(
    class_name: str, rng: np.random.Generator, size: int
) -> tuple[str, list[tuple[BaseGeometry, str]]]:
    """Return the background material and the (geometry, material) shapes of one scene.

    Geometries are in pixel coordinates of a ``size`` x ``size`` chip.
    """
    shapes: list[tuple[BaseGeometry, str]] = []
    full = box(0, 0, size, size)
    if class_name == "AnnualCrop":
        width = rng.uniform(4, 10)
        strips = [box(-size, y, 2 * size, y + width) for y in np.arange(-size, 2 * size, width)]
        rotated = [
            affinity.rotate(s, rng.uniform(0, 180), origin=(size / 2, size / 2)) for s in strips
        ]
        shapes = [(s, "crop" if i % 2 else "soil") for i, s in enumerate(rotated)]
        return "crop", shapes
    if class_name == "PermanentCrop":
        spacing = rng.uniform(4, 7)
        angle = math.radians(rng.uniform(0, 90))
        grid = np.arange(-size, 2 * size, spacing) - size / 2
        gx, gy = (g.ravel() for g in np.meshgrid(grid, grid))
        xs = size / 2 + gx * math.cos(angle) - gy * math.sin(angle)
        ys = size / 2 + gx * math.sin(angle) + gy * math.cos(angle)
        inside = (xs > -spacing) & (xs < size + spacing) & (ys > -spacing) & (ys < size + spacing)
        trees = shapely.buffer(shapely.points(xs[inside], ys[inside]), spacing * 0.3, quad_segs=3)
        return "orchard_ground", [(shapely.multipolygons(trees), "tree")]
    if class_name == "Forest":
        return "forest", [(b, "forest_dark") for b in _blobs(rng, size, 8, (2, 7))]
    if class_name in {"Pasture", "HerbaceousVegetation"}:
        own = "pasture" if class_name == "Pasture" else "herb"
        return own, [(b, "meadow") for b in _blobs(rng, size, 5, (3, 9))]
    if class_name in {"Highway", "River"}:
        width = rng.uniform(2.0, 5.0)
        wiggle = rng.uniform(0.5, 2.5)
        line = _random_line(rng, size, wiggle).buffer(width, cap_style="flat")
        material = "road" if class_name == "Highway" else "water"
        return "herb", [(b, "meadow") for b in _blobs(rng, size, 3, (3, 8))] + [(line, material)]
    if class_name == "Industrial":
        for _ in range(int(rng.integers(3, 7))):
            x, y = rng.uniform(-5, size, 2)
            w, h = rng.uniform(8, 22, 2)
            shapes.append((box(x, y, x + w, y + h), "roof_industrial"))
        return "road", shapes
    if class_name == "Residential":
        street = rng.uniform(6, 10)
        for x in np.arange(0, size, street):
            for y in np.arange(0, size, street):
                if rng.random() < 0.8:
                    s = rng.uniform(2.5, 4.5)
                    shapes.append((box(x + 1, y + 1, x + 1 + s, y + 1 + s), "roof_house"))
        return "urban_ground", shapes
    if class_name == "SeaLake":
        cx, cy = rng.uniform(-0.3, 1.3, 2) * size
        lake = Point(cx, cy).buffer(rng.uniform(0.8, 1.6) * size, quad_segs=16)
        shore = _blobs(rng, size, 2, (2, 6))
        return "herb", [(lake.intersection(full.buffer(size)), "water")] + [
            (s, "water") for s in shore
        ]
    raise KeyError(class_name)


def render_scene(class_name: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Return a (13, size, size) float64 reflectance scene (x 10000) of ``class_name``."""
    background, shapes = scene_layout(class_name, rng, size)
    material = rasterize(
        [(geom, _M[name]) for geom, name in shapes if not geom.is_empty],
        out_shape=(size, size),
        fill=_M[background],
        dtype="uint8",
    )
    scene = SPECTRA[material].transpose(2, 0, 1)  # (13, H, W)
    spread = CLASS_SPREAD[class_name]
    # Chip-to-chip variation: mostly overall brightness, a little per band (colour).
    gain = 1.0 + rng.normal(0.0, spread) * 0.6 + rng.normal(0.0, spread, size=(13, 1, 1)) * 0.12
    within = np.asarray(CLASS_WITHIN[class_name], dtype=np.float64)[:, None, None]
    texture = gaussian_filter(rng.standard_normal((size, size)), sigma=1.5) * 2.5
    speckle = rng.standard_normal((13, size, size))
    scene = scene * gain + within * (0.6 * texture[None] + 0.25 * speckle)
    return np.asarray(scene)


@lru_cache(maxsize=256)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _utm_epsg(lon: float, lat: float) -> int:
    zone = int((lon + 180.0) // 6.0) + 1
    return (32600 if lat >= 0 else 32700) + zone


class _SyntheticSource(Source):
    """Shared item listing of the two synthetic sources."""

    region_box: ClassVar[tuple[float, float, float, float]] = MS_REGION
    place_prefix: ClassVar[str] = ""
    modality_code: ClassVar[int] = 0
    size_index: ClassVar[int] = 0
    license = "CC0-1.0"
    citation = "msrgb-bench synthetic demo data (generated, not observed imagery)"
    homepage = ""
    files = ()

    def _count(self) -> int:
        size = self.options.get("size", "small")
        if isinstance(size, int):
            return size
        if size not in SIZES:
            raise ValueError(
                f"synthetic size must be one of {sorted(SIZES)} or an integer, got {size!r}"
            )
        return SIZES[size][self.size_index]

    def _seed(self) -> int:
        return int(self.options.get("seed", 0))

    def prepare(self) -> Path:
        """Return a virtual root: the synthetic source has no files."""
        return Path(f"synthetic://{self.name}")

    def items(self, root: Path) -> list[SourceItem]:
        """List ``count`` samples per class, keyed ``<Class>_<index>``."""
        count = self._count()
        items = []
        for class_name in CLASSES:
            for index in range(count):
                key = f"{class_name}_{index:05d}"
                items.append(
                    SourceItem(
                        source=self.name,
                        key=key,
                        class_name=class_name,
                        path=root / class_name / key,
                        source_path=f"{class_name}/{key}",
                        place=f"{self.place_prefix}:{key}",
                    )
                )
        return sorted(items, key=lambda item: item.key)

    def _rng(self, item: SourceItem) -> np.random.Generator:
        class_index = CLASSES.index(item.class_name)
        index = int(item.key.rsplit("_", 1)[1])
        return np.random.default_rng([self._seed(), self.modality_code, class_index, index])

    def _place(self, rng: np.random.Generator) -> tuple[float, float]:
        """Return a (lon, lat) drawn around one of 40 regional clusters."""
        west, south, east, north = self.region_box
        centres = np.random.default_rng([self._seed(), self.modality_code, 999]).uniform(
            (west, south), (east, north), size=(40, 2)
        )
        lon, lat = centres[rng.integers(0, len(centres))] + rng.normal(0, 0.25, 2)
        return float(lon), float(lat)

    def _scene(self, item: SourceItem) -> tuple[np.ndarray, np.random.Generator, float, float]:
        """Return the item's 13-band scene, its generator (for further draws) and its place."""
        rng = self._rng(item)
        lon, lat = self._place(rng)
        size = int(self.options.get("chip_size", 64))
        return render_scene(item.class_name, rng, size), rng, lon, lat


@register_source
class SyntheticMS(_SyntheticSource):
    """Synthetic Sentinel-2 L1C-like 13-band chips in EuroSAT band order, over Europe."""

    name = "synthetic-ms"
    modality = "ms"
    title = "Synthetic Sentinel-2 MS scenes (demo)"
    region = "Europe (simulated)"
    band_names = EUROSAT_BANDS
    place_prefix = "synthetic-ms"
    modality_code = 0
    size_index = 0

    def read(self, item: SourceItem) -> Chip:
        """Generate the chip of ``item``."""
        scene, _, lon, lat = self._scene(item)
        size = scene.shape[-1]
        array = np.clip(np.rint(scene), 1, 28000).astype(np.uint16)
        epsg = _utm_epsg(lon, lat)
        to_utm = _transformer("EPSG:4326", f"EPSG:{epsg}")
        x, y = to_utm.transform(lon, lat)
        res = 10.0
        left, top = x - res * size / 2, y + res * size / 2
        to_ll = _transformer(f"EPSG:{epsg}", "EPSG:4326")
        west, south, east, north = to_ll.transform_bounds(
            left, top - res * size, left + res * size, top
        )
        return Chip(
            array=array,
            band_names=EUROSAT_BANDS,
            crs=f"EPSG:{epsg}",
            transform=(left, res, 0.0, top, 0.0, -res),
            lonlat_bounds=(west, south, east, north),
        )


# The simulated RGB camera: rows R, G, B as weights over the 13 MS bands.
RGB_RESPONSE = np.zeros((3, 13))
RGB_RESPONSE[0, [3, 4]] = (0.82, 0.18)  # red, leaking into the red edge
RGB_RESPONSE[1, [2, 3]] = (0.9, 0.1)
RGB_RESPONSE[2, [1, 0]] = (0.88, 0.12)


@register_source
class SyntheticRGB(_SyntheticSource):
    """Synthetic RGB camera images of other places (North America), from another sensor."""

    name = "synthetic-rgb"
    modality = "rgb"
    title = "Synthetic RGB scenes from a different simulated sensor (demo)"
    region = "North America (simulated)"
    band_names = ("R", "G", "B")
    region_box = RGB_REGION
    place_prefix = "synthetic-rgb"
    modality_code = 1
    size_index = 1

    def read(self, item: SourceItem) -> Chip:
        """Generate the image of ``item``."""
        scene, rng, lon, lat = self._scene(item)
        size = scene.shape[-1]
        rgb = np.tensordot(RGB_RESPONSE, scene, axes=1)  # (3, H, W)
        rgb = np.stack([gaussian_filter(band, sigma=0.7) for band in rgb])
        white = 1.0 + rng.normal(0.0, 0.04, size=(3, 1, 1))
        scaled = np.clip(rgb * white / 2600.0, 0.0, 1.0) ** 0.85 * 255.0
        half = 0.6 * size * 1e-4  # footprint of a ~0.6 m/px camera, in degrees (approximate)
        return Chip(
            array=np.clip(np.rint(scaled), 0, 255).astype(np.uint8),
            band_names=("R", "G", "B"),
            lonlat_bounds=(lon - half, lat - half, lon + half, lat + half),
        )
