"""msrgb-bench: asymmetric cross-modal knowledge distillation for remote-sensing scenes.

The teacher sees multispectral (MS) chips, the student sees unpaired RGB images of other places.
Heavy submodules (torch, torchgeo) are imported lazily so that ``import msrgb_bench`` and the
``msrgb`` command line stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names resolved lazily: name -> module that defines it.
_LAZY: dict[str, str] = {
    "MSRGBDataset": "msrgb_bench.data.dataset",
    "PairedMSRGBDataset": "msrgb_bench.data.paired",
    "MSRGBDataModule": "msrgb_bench.data.datamodule",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    """Import heavy public objects on first access (PEP 562)."""
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return getattr(module, name)
    raise AttributeError(f"module 'msrgb_bench' has no attribute {name!r}")
