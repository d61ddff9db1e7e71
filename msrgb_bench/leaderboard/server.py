"""The leaderboard HTTP service: FastAPI app, run by uvicorn.

Routes (``[team]`` = needs ``Authorization: Bearer <token>``):

- ``POST /api/submissions`` [team]: multipart upload of ``predictions`` (the CSV/Parquet
  file) and ``metadata`` (its ``.meta.json`` sidecar). Answers 200 with the scores, 400 with
  what is wrong, 401 for a missing or unknown token, 413 over the size limit, 429 (with
  ``Retry-After``) before the team's interval is over.
- ``GET /api/submissions`` and ``GET /api/submissions/{id}`` [team]: the team's own
  submissions, with their private details (notes, errors, file names); another team's
  submission answers 404.
- ``GET /api/leaderboard``: the board as JSON; ``GET /api/entries/{entry_id}``: one entry
  with per-class scores and confusion matrix.
- ``GET /``: the leaderboard page; ``GET /entry/{entry_id}``: a method's page;
  ``GET /entry/{entry_id}/confusion.png``: its confusion-matrix plot.
- ``GET /api/health``: which datasets the server scores (name and hash).

The labels are read once from the private label file(s) and used only to score; no route
returns them, and error messages name sample ids and predicted values, never a true label.
Uploads are parsed from memory (never written to a path derived from the request) and stored
in SQLite. Requests larger than the size limit are cut off while they arrive.

(No ``from __future__ import annotations`` here: FastAPI must evaluate the route annotations,
which name the closure ``current_team``.)
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from msrgb_bench.leaderboard.board import build_board, entry_detail, entry_id
from msrgb_bench.leaderboard.errors import LeaderboardError, RateLimitedError, SubmissionError
from msrgb_bench.leaderboard.metrics import DEFAULT_BOOTSTRAP, score
from msrgb_bench.leaderboard.page import (
    confusion_png,
    render_entry,
    render_index,
    render_not_found,
)
from msrgb_bench.leaderboard.reference import reported_rows
from msrgb_bench.leaderboard.schema import DEFAULT_MAX_BYTES
from msrgb_bench.leaderboard.store import Store, StoredSubmission, Team
from msrgb_bench.leaderboard.submission import (
    parse_predictions,
    parse_sidecar,
    validate_submission,
)
from msrgb_bench.leaderboard.truth import GroundTruth, read_private_labels

log = logging.getLogger(__name__)

META_MAX_BYTES = 64 * 1024
_MULTIPART_SLACK = 64 * 1024
_ENTRY_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class ServerConfig:
    """Settings of a leaderboard server.

    Attributes:
        labels: Private label files, one per dataset scored.
        db: The SQLite store.
        max_bytes: Largest predictions file accepted.
        interval_s: Least time between two counted submissions of one team.
        n_boot: Bootstrap replicates per score.
        boot_seed: Bootstrap seed.
        show_reference: Whether to show the paper's reported numbers (as their own table).
    """

    labels: tuple[Path, ...]
    db: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    interval_s: float = 3600.0
    n_boot: int = DEFAULT_BOOTSTRAP
    boot_seed: int = 0
    show_reference: bool = True


class _BodyTooLarge:
    """Pure ASGI middleware answering 413 once a request body passes ``max_bytes``.

    The declared ``Content-Length`` is checked first; a body that arrives larger than
    declared (or chunked) is cut off while it streams in, and whatever the app answers is
    replaced by the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        too_large = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if too_large:
                if not answered:
                    answered = True
                    await self._refuse(send)
                return
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
        if too_large and not answered:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over the limit of {self.max_bytes} bytes"}, status_code=413
        )
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


def _load_truths(paths: Sequence[Path]) -> dict[str, GroundTruth]:
    truths: dict[str, GroundTruth] = {}
    for path in paths:
        truth = read_private_labels(path)
        if truth.dataset_hash in truths:
            raise LeaderboardError(f"{path}: a second label file for dataset {truth.dataset}")
        truths[truth.dataset_hash] = truth
    if not truths:
        raise LeaderboardError("the server needs at least one private label file")
    return truths


def _upload_name(raw: str | None) -> str:
    """Return a display name for an upload: its last path part, at most 200 characters."""
    name = PurePosixPath((raw or "").replace("\\", "/")).name[:200]
    return name or "predictions"


def _private_view(sub: StoredSubmission) -> dict[str, Any]:
    return {
        "submission_id": sub.id,
        "team": sub.team,
        "created_at": sub.created_at,
        "status": sub.status,
        "filename": sub.filename,
        "size_bytes": sub.size_bytes,
        "meta": sub.meta,
        "scores": sub.scores,
        "error": sub.error,
    }


def create_app(config: ServerConfig) -> FastAPI:
    """Build the leaderboard app: load the labels, open the store, declare the routes.

    Raises:
        LabelFileError: If a label file is unusable.
        LeaderboardError: If no label file is given or two are for one dataset.
    """
    truths = _load_truths(config.labels)
    store = Store(config.db)
    stale = store.reject_pending()
    if stale:
        log.warning("marked %d submission(s) left pending by a stopped server as rejected", stale)
    reference = reported_rows({t.dataset for t in truths.values()}) if config.show_reference else []

    app = FastAPI(title="msrgb-bench leaderboard", docs_url=None, redoc_url=None)
    app.add_middleware(
        _BodyTooLarge, max_bytes=config.max_bytes + META_MAX_BYTES + _MULTIPART_SLACK
    )
    app.state.store = store
    app.state.config = config
    bearer = HTTPBearer(auto_error=False)

    def current_team(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Team:
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise HTTPException(
                401, "missing token: send 'Authorization: Bearer <token>'", challenge
            )
        team = store.team_for_token(credentials.credentials)
        if team is None:
            raise HTTPException(401, "unknown token", challenge)
        return team

    def board() -> dict[str, Any]:
        return build_board(store.submissions(status="scored"), reference)

    def detail_or_404(eid: str) -> dict[str, Any]:
        detail = (
            entry_detail(store.submissions(status="scored"), eid) if _ENTRY_ID.match(eid) else None
        )
        if detail is None:
            raise HTTPException(404, "no such entry")
        return detail

    @app.post("/api/submissions")
    def submit(
        predictions: Annotated[UploadFile, File()],
        metadata: Annotated[UploadFile, File()],
        team: Annotated[Team, Depends(current_team)],
    ) -> JSONResponse:
        name = _upload_name(predictions.filename)
        data = predictions.file.read(config.max_bytes + 1)
        if len(data) > config.max_bytes:
            message = f"{name}: file is over the size limit of {config.max_bytes} bytes"
            store.record_rejected(team, name, len(data), message)
            return JSONResponse({"detail": message}, status_code=413)
        side = metadata.file.read(META_MAX_BYTES + 1)
        try:
            if len(side) > META_MAX_BYTES:
                raise SubmissionError(f"metadata over {META_MAX_BYTES} bytes", "metadata")
            meta = parse_sidecar(side, data, source="metadata")
            truth = truths.get(meta.dataset_hash)
            if truth is None:
                offered = ", ".join(f"{t.dataset} ({h[:12]}...)" for h, t in truths.items())
                raise SubmissionError(
                    f"dataset_hash {meta.dataset_hash[:12]}... is not scored by this server; "
                    f"it scores: {offered}",
                    "metadata",
                )
        except SubmissionError as exc:
            sid = store.record_rejected(team, name, len(data), str(exc))
            return JSONResponse({"detail": str(exc), "submission_id": sid}, status_code=400)
        try:
            sid = store.reserve(team, name, data, config.interval_s)
        except RateLimitedError as exc:
            return JSONResponse(
                {"detail": str(exc)},
                status_code=429,
                headers={"Retry-After": str(max(1, round(exc.retry_after)))},
            )
        try:
            frame = parse_predictions(data, name)
            aligned = validate_submission(frame, meta, truth, source=name)
            scores = score(aligned, n_boot=config.n_boot, seed=config.boot_seed).to_dict()
        except SubmissionError as exc:
            store.finish(sid, meta=meta.to_dict(), error=str(exc))
            return JSONResponse({"detail": str(exc), "submission_id": sid}, status_code=400)
        except Exception:
            log.exception("scoring submission %d failed", sid)
            store.finish(sid, meta=meta.to_dict(), error="internal error while scoring")
            return JSONResponse(
                {"detail": "internal error while scoring", "submission_id": sid}, status_code=500
            )
        store.finish(sid, meta=meta.to_dict(), scores=scores)
        key = {**meta.to_dict(), "team": team.name}
        return JSONResponse(
            {"submission_id": sid, "team": team.name, "entry_id": entry_id(key), "scores": scores}
        )

    @app.get("/api/submissions")
    def own_submissions(team: Annotated[Team, Depends(current_team)]) -> dict[str, Any]:
        return {
            "team": team.name,
            "submissions": [_private_view(s) for s in store.submissions(team=team)],
        }

    @app.get("/api/submissions/{submission_id}")
    def own_submission(
        submission_id: int, team: Annotated[Team, Depends(current_team)]
    ) -> dict[str, Any]:
        for sub in store.submissions(team=team):
            if sub.id == submission_id:
                return _private_view(sub)
        raise HTTPException(404, "no such submission of your team")

    @app.get("/api/leaderboard")
    def leaderboard_json() -> dict[str, Any]:
        return board()

    @app.get("/api/entries/{eid}")
    def entry_json(eid: str) -> dict[str, Any]:
        return detail_or_404(eid)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        datasets = [{"dataset": t.dataset, "dataset_hash": h} for h, t in truths.items()]
        return {"status": "ok", "datasets": datasets}

    @app.get("/", response_class=HTMLResponse)
    def index_page() -> HTMLResponse:
        return HTMLResponse(render_index(board()))

    @app.get("/entry/{eid}", response_class=HTMLResponse)
    def entry_page(eid: str) -> HTMLResponse:
        try:
            return HTMLResponse(render_entry(detail_or_404(eid)))
        except HTTPException:
            return HTMLResponse(render_not_found("No such leaderboard entry."), status_code=404)

    @app.get("/entry/{eid}/confusion.png")
    def entry_plot(eid: str) -> Response:
        detail = detail_or_404(eid)
        png = confusion_png(detail["confusion_matrix"], detail["classes"])
        return Response(png, media_type="image/png")

    return app


def run_server(config: ServerConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the leaderboard with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config), host=host, port=port, log_level="info")
