"""Headless Chromium (Debian's) opens the leaderboard, sorts it and opens a method page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from leaderboard_fixtures import (
    LiveServer,
    Published,
    make_meta,
    post_submission,
    rgb_labels,
    running,
    write_preds,
)

from msrgb_bench.leaderboard.server import ServerConfig

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def board_server(
    tmp_path_factory: pytest.TempPathFactory, published: Published
) -> Iterator[LiveServer]:
    """A server holding: sembridge 9/9; kd seeds 6/9 and 8/9; none 4/9."""
    tmp = tmp_path_factory.mktemp("browser")
    config = ServerConfig(
        labels=(published.private_labels,), db=tmp / "lb.sqlite", interval_s=0, n_boot=5
    )
    ids, y = rgb_labels(published.info)
    with running(config) as server:
        tokens = {team: server.add_team(team) for team in ("blue", "red")}
        for team, method, seed, wrong in (
            ("blue", "sembridge", 0, 0),
            ("red", "kd", 0, 3),
            ("red", "kd", 1, 1),
            ("red", "none", 0, 5),
        ):
            preds = y.copy()
            preds[:wrong] = (preds[:wrong] + 1) % 3
            meta = make_meta(published.info, method=method, seed=seed)
            path = write_preds(tmp / f"{method}-{seed}.csv", ids, preds, meta)
            assert post_submission(server, tokens[team], path).status_code == 200
        yield server


def _methods(page: Any) -> list[str]:
    return page.locator("table.board tbody tr td:nth-child(2)").all_inner_texts()


def test_sort_the_table_and_open_a_method(browser: Any, board_server: LiveServer) -> None:
    page = browser.new_page()
    page.goto(board_server.url + "/")
    assert page.locator("h2").first.inner_text() == "s2s-eu: resnet34 -> resnet34 (test, rgb)"
    assert _methods(page) == ["sembridge", "kd", "none"]  # ranked by OA
    oa = page.locator("table.board th", has_text="OA")
    oa.click()
    assert oa.get_attribute("aria-sort") == "ascending"
    assert _methods(page) == ["none", "kd", "sembridge"]
    oa.click()
    assert oa.get_attribute("aria-sort") == "descending"
    assert _methods(page) == ["sembridge", "kd", "none"]
    page.locator("table.board th", has_text="team").click()
    assert page.locator("table.board tbody tr td:nth-child(3)").all_inner_texts() == [
        "blue",
        "red",
        "red",
    ]
    reference = page.locator("#reference")
    assert "Reported in paper" in reference.locator("h2").inner_text()
    assert "93.7" in reference.inner_text()

    page.get_by_role("link", name="kd", exact=True).click()
    page.wait_for_url("**/entry/*")
    assert page.locator("h1#method").inner_text() == "kd"
    assert page.locator("#seeds").inner_text() == "0, 1"
    # OA over seeds: 6/9 and 8/9 -> mean 77.78, sample std 15.71 (percent)
    assert page.locator("#summary td.metric-oa").inner_text() == "77.78 ± 15.71"
    classes = page.locator("#per-class tbody tr td:first-child").all_inner_texts()
    assert classes == ["forest", "river", "sea_lake"]
    page.locator("#per-class th", has_text="recall").click()
    recalls = page.locator("#per-class tbody tr td:nth-child(3)").all_inner_texts()
    assert recalls == sorted(recalls, key=float)
    image = page.locator("img#confusion")
    image.wait_for()
    page.wait_for_function("document.getElementById('confusion').complete")
    assert image.evaluate("img => img.naturalWidth") > 100
    page.close()
