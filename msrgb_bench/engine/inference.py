"""Batched forward passes over a whole dataset outside a trainer (matching, re-matching)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from msrgb_bench.data.dataset import collate_samples


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Put ``module`` in eval mode for the block and restore its previous mode afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def batched_outputs(
    fn: Callable[[Tensor], Tensor],
    dataset: Any,
    normalize: nn.Module,
    *,
    batch_size: int,
    device: torch.device,
) -> Tensor:
    """Return ``fn(normalize(image))`` for every sample of ``dataset``, in dataset order.

    Batches are read with the msrgb collate function (whole batches at once), moved to
    ``device``, normalised and passed through ``fn`` without gradient; outputs come back as one
    float32 tensor on ``device``.

    Args:
        fn: The network (or one of its parts) to run.
        dataset: A dataset of sample dicts with an ``image``.
        normalize: The evaluation normalisation of those images.
        batch_size: Samples per forward pass.
        device: Where to run.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_samples)
    chunks = []
    with torch.no_grad():
        for batch in loader:
            image = normalize(batch["image"].to(device, non_blocking=True))
            chunks.append(fn(image).float())
    return torch.cat(chunks)
