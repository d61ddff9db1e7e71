"""Fixtures for the benchmark runner tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Run on one intra-op thread: tiny tensors on shared cores are faster without threading.

    Module-scoped, so that it also covers the module-scoped benchmark run.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
