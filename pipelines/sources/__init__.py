"""Public datasets the pipelines know, one module each, registered by name.

Importing this package registers every source: ``list_sources()`` lists their names.
"""

from msrgb_bench.pipelines.sources.base import (
    Chip,
    RemoteFile,
    Source,
    SourceItem,
    create_source,
    list_sources,
    register_source,
    source_class,
)

# Registration side effects: one module per public dataset.
from msrgb_bench.pipelines.sources import (  # noqa: F401  isort: skip
    bigearthnet,
    eurosat,
    nasc_tg2,
    resisc45,
    synthetic,
    ucmerced,
)

__all__ = [
    "Chip",
    "RemoteFile",
    "Source",
    "SourceItem",
    "create_source",
    "list_sources",
    "register_source",
    "source_class",
]
