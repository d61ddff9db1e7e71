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


def _json(server: str, method: str, endpoint: str, refused: str, **kwargs: Any) -> dict[str, Any]:
    """Send one request to ``server`` and return its JSON answer.

    Raises:
        LeaderboardError: If the server cannot be reached or answers an error (``refused``
            starts the message).
    """
    try:
        response = httpx.request(method, server.rstrip("/") + endpoint, **kwargs)
    except httpx.HTTPError as exc:
        raise LeaderboardError(f"cannot reach {server}: {exc}") from exc
    if response.status_code != 200:
        raise LeaderboardError(f"{refused} (HTTP {response.status_code}): {_detail(response)}")
    answer: dict[str, Any] = response.json()
    return answer


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
    return _json(
        server, "POST", "/api/submissions", "the server refused the submission", files=files,
        headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s,
    )  # fmt: skip


def fetch_board(server: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Return the board JSON of a server.

    Raises:
        LeaderboardError: If the server cannot be reached or answers an error.
    """
    return _json(server, "GET", "/api/leaderboard", f"{server} refused", timeout=timeout_s)
