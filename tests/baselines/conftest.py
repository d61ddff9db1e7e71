"""Fixtures for the method tests: cached tiny networks and batches."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import pytest
import torch

from msrgb_bench.models import Backbone, create_model

NUM_CLASSES = 5
MS_CHANS = 13


@pytest.fixture(scope="session")
def model_factory() -> Callable[[str, int], Backbone]:
    """Return ``make(arch, in_chans)``: a fresh copy of one cached, seeded network per key."""
    cache: dict[tuple[str, int], Backbone] = {}

    def make(arch: str, in_chans: int) -> Backbone:
        key = (arch, in_chans)
        if key not in cache:
            torch.manual_seed(len(cache))
            cache[key] = create_model(arch, in_chans=in_chans, num_classes=NUM_CLASSES)
        return copy.deepcopy(cache[key])

    return make


@pytest.fixture
def paired_batch() -> dict[str, torch.Tensor]:
    """A paired batch of 4 RGB students and 4 MS teachers at 32 x 32."""
    gen = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(4, 3, 32, 32, generator=gen),
        "teacher_image": torch.randn(4, MS_CHANS, 32, 32, generator=gen),
        "label": torch.tensor([0, 3, 1, 3]),
    }


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run on one intra-op thread: tiny tensors on shared cores are faster without threading."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
