"""Locate the offline sample of real imagery (``../shared/data`` or ``$MSRGB_SAMPLE_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MSRGB_SAMPLE_DATA"


def find_sample_data(start: str | Path | None = None) -> Path | None:
    """Return the sample-data folder, or ``None`` if it cannot be found.

    ``$MSRGB_SAMPLE_DATA`` wins; otherwise ``shared/data`` is looked for beside ``start`` (the
    current folder by default) and each of its parents, which finds ``../shared/data`` from a
    checkout.

    Args:
        start: Folder to start looking from.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "data"
        if (candidate / "PROVENANCE.md").is_file():
            return candidate
    return None
