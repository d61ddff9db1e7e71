"""Checkpoints as safetensors files: tensors plus string metadata, never a pickle.

A checkpoint holds the predicting network's state under ``model.`` and the state of a
distiller's extra trainable modules (a learned temperature, alignment heads) under ``extra.``.
Its metadata records the format, the run's config hash and the epoch it was taken at; the full
config is the run folder's ``config.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from msrgb_bench.atomic import atomic_path
from msrgb_bench.errors import RunFolderError

CHECKPOINT_FORMAT = "msrgb-checkpoint/1"
MODEL_PREFIX = "model."
EXTRA_PREFIX = "extra."


def save_checkpoint(path: str | Path, state: dict[str, Tensor], metadata: dict[str, str]) -> Path:
    """Write ``state`` to a safetensors file atomically.

    Args:
        path: Target file.
        state: Tensors by name (moved to CPU and made contiguous here).
        metadata: String metadata stored in the file header (``format`` is added).

    Returns:
        The written path.
    """
    path = Path(path)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={**metadata, "format": CHECKPOINT_FORMAT})
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """Return the header metadata of a checkpoint without reading its tensors.

    Raises:
        RunFolderError: If the file is missing or not an msrgb safetensors checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise RunFolderError(path, "checkpoint not found")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunFolderError(path, f"not a readable safetensors file ({exc})") from exc
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise RunFolderError(path, f"not an msrgb checkpoint (format {metadata.get('format')!r})")
    return metadata


def load_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns:
        ``(tensors, metadata)``; tensors are on the CPU.

    Raises:
        RunFolderError: If the file is missing, unreadable or of another format.
    """
    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunFolderError(Path(path), f"unreadable tensors ({exc})") from exc
    return tensors, metadata


def strip_prefix(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Return the entries of ``state`` under ``prefix``, with the prefix removed."""
    return {name[len(prefix) :]: t for name, t in state.items() if name.startswith(prefix)}


def load_into(module: torch.nn.Module, state: dict[str, Tensor], path: str | Path) -> None:
    """Load ``state`` into ``module`` strictly, naming ``path`` if the keys or shapes differ.

    Raises:
        RunFolderError: On missing or unexpected keys or a shape mismatch.
    """
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise RunFolderError(
            Path(path), f"does not fit the configured network: {' '.join(first[:3])[:300]}"
        ) from exc
