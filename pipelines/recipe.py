"""Recipes: YAML files naming teacher/student sources, class map, sizes, split ratios and seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msrgb_bench.errors import RecipeError
from msrgb_bench.shipped_yaml import list_shipped, read_shipped_or_file

RECIPE_DIR = "recipes"
_TOP_KEYS = {
    "name",
    "version",
    "description",
    "classes",
    "teacher",
    "student",
    "class_map",
    "splits",
    "split_block_deg",
    "dedup_max_distance",
    "seed",
    "source_options",
    "limitations",
    "multilabel",
    "place_policy",
}
_SIDE_KEYS = {"sources", "size", "bands", "default_bands"}


@dataclass(frozen=True)
class Side:
    """One modality of a recipe.

    Attributes:
        sources: Source names feeding this side.
        size: Output image size in pixels (square).
        default_bands: Band names a model uses by default (MS side; empty: all).
    """

    sources: tuple[str, ...]
    size: int
    default_bands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """A parsed, validated recipe.

    Attributes:
        name: Recipe name (the file stem).
        version: Dataset version string.
        description: One paragraph for the data card.
        classes: Benchmark classes in index order.
        teacher: The MS side.
        student: The RGB side.
        class_map: Per source, source class name -> benchmark class (``None``: dropped on purpose).
        splits: Split ratios (train, val, test), summing to 1.
        split_block_deg: Side (degrees) of the square spatial blocks used where coordinates
            are known.
        dedup_max_distance: Largest perceptual-hash Hamming distance counted as a near-duplicate.
        seed: Default build seed.
        source_options: Per source, options passed to the source (e.g. synthetic sizes).
        limitations: Known limitations, listed in the data card.
        multilabel: Whether teacher samples carry several labels.
        path: File the recipe was read from.
    """

    name: str
    version: str
    description: str
    classes: tuple[str, ...]
    teacher: Side
    student: Side
    class_map: dict[str, dict[str, str | None]]
    splits: dict[str, float]
    split_block_deg: float = 1.0
    dedup_max_distance: int = 0
    seed: int = 0
    source_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    limitations: tuple[str, ...] = ()
    multilabel: bool = False
    path: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        """Return every source name, teacher first."""
        return self.teacher.sources + self.student.sources


def _side(raw: Any, where: Path, key: str) -> Side:
    if not isinstance(raw, dict):
        raise RecipeError(where, f"'{key}' must be a mapping with keys {sorted(_SIDE_KEYS)}")
    unknown = set(raw) - _SIDE_KEYS
    if unknown:
        raise RecipeError(where, f"unknown key '{key}.{sorted(unknown)[0]}'")
    sources = raw.get("sources")
    if not sources or not isinstance(sources, list):
        raise RecipeError(where, f"'{key}.sources' must be a non-empty list of source names")
    size = raw.get("size")
    if not isinstance(size, int) or size <= 0:
        raise RecipeError(where, f"'{key}.size' must be a positive integer, got {size!r}")
    bands = raw.get("default_bands", raw.get("bands", ()))
    return Side(tuple(str(s) for s in sources), size, tuple(str(b) for b in bands or ()))


def parse_recipe(data: Any, where: Path) -> Recipe:
    """Validate a parsed YAML document and return a :class:`Recipe`.

    Raises:
        RecipeError: Naming the file and the offending key.
    """
    if not isinstance(data, dict):
        raise RecipeError(where, "a recipe must be a YAML mapping")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise RecipeError(where, f"unknown recipe key '{sorted(unknown)[0]}'")
    for key in ("name", "classes", "teacher", "student", "class_map", "splits"):
        if key not in data:
            raise RecipeError(where, f"missing required key '{key}'")
    classes = tuple(str(c) for c in data["classes"])
    if len(set(classes)) != len(classes) or not classes:
        raise RecipeError(where, "'classes' must be a non-empty list of distinct names")
    teacher = _side(data["teacher"], where, "teacher")
    student = _side(data["student"], where, "student")
    splits = {str(k): float(v) for k, v in dict(data["splits"]).items()}
    if set(splits) != {"train", "val", "test"}:
        raise RecipeError(where, "'splits' must give exactly train, val and test ratios")
    if any(v <= 0 for v in splits.values()) or abs(sum(splits.values()) - 1.0) > 1e-6:
        raise RecipeError(where, f"split ratios must be positive and sum to 1, got {splits}")
    class_map: dict[str, dict[str, str | None]] = {}
    raw_map = data["class_map"]
    if not isinstance(raw_map, dict):
        raise RecipeError(where, "'class_map' must map source names to class maps")
    for source in teacher.sources + student.sources:
        mapping = raw_map.get(source)
        if mapping is None:
            raise RecipeError(where, f"'class_map' has no entry for source '{source}'")
        if mapping == "identity":
            mapping = {c: c for c in classes}
        if not isinstance(mapping, dict):
            raise RecipeError(where, f"'class_map.{source}' must be a mapping or 'identity'")
        for src_class, target in mapping.items():
            if target is not None and target not in classes:
                raise RecipeError(
                    where, f"'class_map.{source}.{src_class}' maps to unknown class '{target}'"
                )
        class_map[source] = {str(k): (None if v is None else str(v)) for k, v in mapping.items()}
    extra_maps = set(raw_map) - set(class_map)
    if extra_maps:
        raise RecipeError(
            where, f"'class_map' names a source not used by the recipe: '{sorted(extra_maps)[0]}'"
        )
    return Recipe(
        name=str(data["name"]),
        version=str(data.get("version", "1.0")),
        description=str(data.get("description", "")).strip(),
        classes=classes,
        teacher=teacher,
        student=student,
        class_map=class_map,
        splits=splits,
        split_block_deg=float(data.get("split_block_deg", 1.0)),
        dedup_max_distance=int(data.get("dedup_max_distance", 0)),
        seed=int(data.get("seed", 0)),
        source_options={str(k): dict(v) for k, v in dict(data.get("source_options") or {}).items()},
        limitations=tuple(str(x).strip() for x in data.get("limitations") or ()),
        multilabel=bool(data.get("multilabel", False)),
        path=str(where),
    )


def list_recipes() -> list[str]:
    """Return the names of the recipes shipped in the package, sorted."""
    return list_shipped("msrgb_bench.pipelines", RECIPE_DIR)


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a shipped recipe by name, or a recipe file by path.

    Raises:
        UnknownNameError: If no shipped recipe has that name and it is not a file.
        RecipeError: If the file is not a valid recipe.
    """
    path, data = read_shipped_or_file(
        name_or_path, package="msrgb_bench.pipelines", folder=RECIPE_DIR, kind="recipe",
        error=RecipeError,
    )  # fmt: skip
    return parse_recipe(data, path)
