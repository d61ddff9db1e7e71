"""Fixtures for the engine tests."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run on one intra-op thread: tiny tensors on shared cores are faster without threading."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*reference is not registered on the model.*")
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        yield
    torch.set_num_threads(threads)
