"""Render a dataset's data card (README.md with Hugging Face YAML front matter)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import jinja2
import pandas as pd
import yaml

from msrgb_bench.data.manifest import DatasetInfo
from msrgb_bench.pipelines.recipe import Recipe
from msrgb_bench.pipelines.sources.base import Source

TEMPLATE = "dataset_card.md.j2"


def size_category(n: int) -> str:
    """Return the Hugging Face size category of ``n`` samples."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
              (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]  # fmt: skip
    for limit, name in bounds:
        if n < limit:
            return name
    return "n>10M"


def _hf_license(text: str) -> str:
    known = {
        "MIT": "mit",
        "CC0-1.0": "cc0-1.0",
        "CC-BY-4.0": "cc-by-4.0",
        "CC-BY-NC-4.0": "cc-by-nc-4.0",
        "CDLA-Permissive-1.0": "cdla-permissive-1.0",
    }
    for key, value in known.items():
        if text.upper().startswith(key.upper()):
            return value
    return "other"


def front_matter(info: DatasetInfo, manifest: pd.DataFrame, sources: Sequence[Source]) -> str:
    """Return the YAML front matter: licences, task, size, and one config per modality."""
    configs: list[dict[str, Any]] = []
    for modality, suffix in (("ms", "tif"), ("rgb", "png")):
        in_modality = manifest[manifest["modality"] == modality]
        present = [s for s in ("train", "val", "test") if (in_modality["split"] == s).any()]
        configs.append(
            {
                "config_name": modality,
                "data_files": [
                    {
                        "split": "validation" if s == "val" else s,
                        "path": f"{modality}/{s}/*/*.{suffix}",
                    }
                    for s in present
                ],
            }
        )
    licenses = sorted({_hf_license(s.license) for s in sources})
    meta = {
        "license": licenses[0] if len(licenses) == 1 else licenses,
        "pretty_name": f"msrgb-bench {info.recipe}",
        "task_categories": ["image-classification"],
        "tags": [
            "remote-sensing",
            "multispectral",
            "sentinel-2",
            "knowledge-distillation",
            "torchgeo",
        ],
        "size_categories": [size_category(len(manifest))],
        "configs": configs,
    }
    return str(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))


def render_card(
    info: DatasetInfo,
    recipe: Recipe,
    manifest: pd.DataFrame,
    sources: Sequence[Source],
    dropped: dict[tuple[str, str], int],
    shared_places_dropped: int,
) -> str:
    """Render the data card.

    Args:
        info: The dataset's ``dataset.json`` content.
        recipe: The recipe it was built from.
        manifest: The final manifest.
        sources: The sources used, teacher first.
        dropped: Samples dropped per (source, source class) because the class map drops the class.
        shared_places_dropped: Samples dropped because their place was given to the other modality.
    """
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: (resources.files("msrgb_bench.data_cards") / name).read_text(
                encoding="utf-8"
            )
        ),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    map_sources = list(recipe.class_map)
    class_rows = []
    for cls in recipe.classes:
        cells = []
        for src in map_sources:
            names = sorted(k for k, v in recipe.class_map[src].items() if v == cls)
            cells.append(", ".join(f"`{n}`" for n in names) or "-")
        class_rows.append({"name": cls, "cells": cells})
    columns = [f"{m} {s}" for m in ("ms", "rgb") for s in ("train", "val", "test")]
    table = manifest.groupby(["label_name", "modality", "split"]).size()
    counts = {
        cls: [int(table.get((cls, c.split()[0], c.split()[1]), 0)) for c in columns]
        for cls in recipe.classes
    }
    totals = [sum(values[i] for values in counts.values()) for i in range(len(columns))]
    count_rows = [{"name": cls, "counts": values} for cls, values in counts.items()]
    count_rows.append({"name": "**total**", "counts": totals})
    source_files = [{"name": f.name, "sha256": f.sha256} for s in info.sources for f in s.files]
    return env.get_template(TEMPLATE).render(
        front_matter=front_matter(info, manifest, sources),
        title=f"msrgb-bench dataset `{info.recipe}`",
        description=recipe.description,
        synthetic=any(s.name.startswith("synthetic") for s in sources),
        tool_version=info.tool_version,
        recipe=info.recipe,
        version=info.version,
        seed=info.seed,
        content_hash=info.content_hash,
        multilabel=info.multilabel,
        ms_bands=info.ms_bands,
        default_bands=recipe.teacher.default_bands,
        ms_size=info.ms_size,
        rgb_size=info.rgb_size,
        sources=[
            {
                "name": s.name,
                "title": s.title,
                "homepage": s.homepage,
                "modality": s.modality,
                "region": s.region,
                "license": s.license,
                "citation": s.citation,
            }
            for s in sources
        ],
        source_files=source_files,
        map_sources=map_sources,
        class_rows=class_rows,
        dropped=[
            {"source": s, "class_name": c, "count": n} for (s, c), n in sorted(dropped.items())
        ],
        count_columns=columns,
        count_rows=count_rows,
        split_method=info.split_method,
        shared_places_dropped=shared_places_dropped,
        dedup_max_distance=recipe.dedup_max_distance,
        removed_duplicates=info.removed_duplicates,
        limitations=list(recipe.limitations),
    )
