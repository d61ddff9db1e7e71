"""Talk to a leaderboard server: submit predictions, fetch the board (httpx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from msrgb_bench.leaderboard.errors import LeaderboardError
from msrgb_bench.leaderboard.schema import sidecar_path
from msrgb_bench.leaderboard.submission import read_submission


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return str(detail)[:2000]


def submit(path: str | Path, server: str, token: str, timeout_s: float = 600.0) -> dict[str, Any]:
    """Upload a submission (predictions file and its sidecar) and return the server's answer.

    The files are read and checked locally first (size, sidecar), so a broken submission fails
    before it uses the team's interval.

    Args:
        path: The predictions file.
        server: Base URL, e.g. ``http://127.0.0.1:8000``.
        token: The team's token.
        timeout_s: Seconds to wait for the score.

    Returns:
        ``{"submission_id", "team", "entry_id", "scores"}``.

    Raises:
        SubmissionError: If the local files are unreadable.
        LeaderboardError: If the server refuses the submission or cannot be reached.
    """
    path = Path(path)
    read_submission(path)
    side = sidecar_path(path)
    files = {
        "predictions": (path.name, path.read_bytes(), "application/octet-stream"),
        "metadata": (side.name, side.read_bytes(), "application/json"),
    }
    try:
        response = httpx.post(
            server.rstrip("/") + "/api/submissions",
            files=files,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise LeaderboardError(f"cannot reach {server}: {exc}") from exc
    if response.status_code != 200:
        raise LeaderboardError(
            f"the server refused the submission (HTTP {response.status_code}): {_detail(response)}"
        )
    result: dict[str, Any] = response.json()
    return result


def fetch_board(server: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Return the board JSON of a server.

    Raises:
        LeaderboardError: If the server cannot be reached or answers an error.
    """
    try:
        response = httpx.get(server.rstrip("/") + "/api/leaderboard", timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise LeaderboardError(f"cannot reach {server}: {exc}") from exc
    if response.status_code != 200:
        raise LeaderboardError(
            f"{server} answered HTTP {response.status_code}: {_detail(response)}"
        )
    board: dict[str, Any] = response.json()
    return board
