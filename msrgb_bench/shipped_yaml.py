"""YAML files shipped inside the package (recipes, protocols) or given by path.

A name such as ``"demo"`` is looked up as ``<package>/<folder>/demo.yaml``; anything ending in
``.yaml``/``.yml`` or naming an existing file is read from disk.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from msrgb_bench.errors import FileProblemError, UnknownNameError

YAML_SUFFIX = ".yaml"


def list_shipped(package: str, folder: str) -> list[str]:
    """Return the names (without ``.yaml``) of the files shipped in ``package/folder``, sorted."""
    directory = resources.files(package) / folder
    return sorted(
        p.name.removesuffix(YAML_SUFFIX)
        for p in directory.iterdir()
        if p.name.endswith(YAML_SUFFIX)
    )


def read_shipped_or_file(
    name_or_path: str | Path,
    *,
    package: str,
    folder: str,
    kind: str,
    error: type[FileProblemError],
) -> tuple[Path, Any]:
    """Return ``(path, parsed YAML)`` of a shipped file by name, or of a file by path.

    Args:
        name_or_path: A shipped name or a path.
        package: The package holding the shipped files.
        folder: Their folder inside the package.
        kind: What they are, for messages (``"recipe"``, ``"protocol"``).
        error: The error class raised for a missing or unparsable file.

    Raises:
        UnknownNameError: If no shipped file has that name and it is not a file.
        FileProblemError: (``error``) If the file is missing or not valid YAML.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in {YAML_SUFFIX, ".yml"} or candidate.is_file():
        path = candidate
        if not path.is_file():
            raise error(path, f"{kind} file does not exist")
        text = path.read_text(encoding="utf-8")
    else:
        name = str(name_or_path)
        shipped = list_shipped(package, folder)
        if name not in shipped:
            raise UnknownNameError(kind, name, shipped)
        resource = resources.files(package) / folder / f"{name}{YAML_SUFFIX}"
        path = Path(str(resource))
        text = resource.read_text(encoding="utf-8")
    try:
        return path, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(path, f"not valid YAML ({exc})") from exc
