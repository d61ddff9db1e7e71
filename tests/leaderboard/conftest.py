"""Fixtures of the leaderboard tests: released datasets and one shared live server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from leaderboard_fixtures import SERVER_MAX_BYTES, LiveServer, Published, publish

from msrgb_bench.leaderboard.server import ServerConfig


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """A single-label dataset (recipe s2s-eu), released."""
    return publish(tmp_path_factory.mktemp("s2s"))


@pytest.fixture(scope="session")
def published_multilabel(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """A multi-label dataset (recipe m2s-gl, multi-label ms modality), released."""
    return publish(tmp_path_factory.mktemp("m2s"), recipe="m2s-gl", multilabel=True)


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory,
    published: Published,
    published_multilabel: Published,
) -> Iterator[LiveServer]:
    """One server shared by the API tests: two datasets, 1 h interval, 200 kB limit."""
    config = ServerConfig(
        labels=(published.private_labels, published_multilabel.private_labels),
        db=tmp_path_factory.mktemp("db") / "leaderboard.sqlite",
        max_bytes=SERVER_MAX_BYTES,
        interval_s=3600.0,
        n_boot=20,
    )
    server = LiveServer(config).start()
    yield server
    server.stop()
