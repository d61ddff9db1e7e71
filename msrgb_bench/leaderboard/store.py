"""The leaderboard store: teams and every submission with its score, in one SQLite file.

Every operation opens its own connection (safe from any thread), the database runs in WAL mode
so readers never block the writer, and the rate-limit check and the reservation of a
submission slot happen in one ``BEGIN IMMEDIATE`` transaction, so concurrent submissions of one
team cannot both pass. A submission is first stored as ``pending``, then marked ``scored`` or
``rejected``; a ``pending`` row left by a server that stopped mid-scoring is marked
``rejected`` at the next start. Team tokens are stored as sha256 hashes only.

Uploaded predictions are kept zlib-compressed, so every submission can be rescored later.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import sqlite3
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msrgb_bench.leaderboard.errors import LeaderboardError, RateLimitedError

STORE_VERSION = 1
TEAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL REFERENCES teams(id),
    created_at REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'scored', 'rejected')),
    filename TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT,
    content BLOB,
    meta_json TEXT,
    scores_json TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS submissions_team ON submissions (team_id, created_at);
"""


@dataclass(frozen=True)
class Team:
    """A registered team."""

    id: int
    name: str


@dataclass(frozen=True)
class StoredSubmission:
    """One row of the submissions table (without the uploaded bytes).

    Attributes:
        id: Submission number.
        team: Team name.
        created_at: Unix time of the upload.
        status: ``pending``, ``scored`` or ``rejected``.
        filename: The uploaded file's name.
        size_bytes: The upload's size.
        meta: The submission metadata (``None`` if it could not be read).
        scores: The scores (``None`` unless scored).
        error: Why it was rejected.
    """

    id: int
    team: str
    created_at: float
    status: str
    filename: str
    size_bytes: int
    meta: dict[str, Any] | None
    scores: dict[str, Any] | None
    error: str | None


def hash_token(token: str) -> str:
    """Return the stored form of a team token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Store:
    """A leaderboard database file.

    Args:
        path: The SQLite file (created with its tables if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, STORE_VERSION):
                raise LeaderboardError(f"{self.path}: unknown store version {version}")
            db.execute(f"PRAGMA user_version = {STORE_VERSION}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    # --- teams ---------------------------------------------------------------------------------

    def add_team(self, name: str) -> str:
        """Register a team and return its token (shown once; only its hash is kept).

        Raises:
            LeaderboardError: If the name is malformed or taken.
        """
        if not TEAM_NAME.match(name):
            raise LeaderboardError(
                f"team name {name!r:.80} must be 1-64 letters, digits, spaces, '_', '.' or '-'"
            )
        token = secrets.token_urlsafe(32)
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO teams (name, token_sha256, created_at) VALUES (?, ?, ?)",
                    (name, hash_token(token), time.time()),
                )
        except sqlite3.IntegrityError:
            raise LeaderboardError(f"team {name!r} already exists") from None
        return token

    def team_for_token(self, token: str) -> Team | None:
        """Return the team a token belongs to, or ``None``."""
        with self._connect() as db:
            row = db.execute(
                "SELECT id, name FROM teams WHERE token_sha256 = ?", (hash_token(token),)
            ).fetchone()
        return Team(id=row[0], name=row[1]) if row else None

    def teams(self) -> list[str]:
        """Return the registered team names, sorted."""
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT name FROM teams ORDER BY name")]

    # --- submissions ---------------------------------------------------------------------------

    def reserve(
        self, team: Team, filename: str, content: bytes, interval_s: float, now: float | None = None
    ) -> int:
        """Store an upload as ``pending`` if the team's interval is over.

        Scored and pending submissions count towards the interval; rejected ones do not.

        Returns:
            The new submission's id.

        Raises:
            RateLimitedError: If the team's last submission is younger than ``interval_s``.
        """
        now = time.time() if now is None else now
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                last = db.execute(
                    "SELECT MAX(created_at) FROM submissions "
                    "WHERE team_id = ? AND status IN ('pending', 'scored')",
                    (team.id,),
                ).fetchone()[0]
                if last is not None and now - last < interval_s:
                    raise RateLimitedError(interval_s - (now - last))
                cursor = db.execute(
                    "INSERT INTO submissions (team_id, created_at, status, filename, size_bytes, "
                    "sha256, content) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
                    (
                        team.id,
                        now,
                        filename,
                        len(content),
                        hashlib.sha256(content).hexdigest(),
                        zlib.compress(content, 6),
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def record_rejected(self, team: Team, filename: str, size_bytes: int, error: str) -> int:
        """Store an upload refused before it was reserved (too large, unreadable...)."""
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO submissions (team_id, created_at, status, filename, size_bytes, "
                "error) VALUES (?, ?, 'rejected', ?, ?, ?)",
                (team.id, time.time(), filename, size_bytes, error),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish(
        self,
        submission_id: int,
        *,
        meta: dict[str, Any] | None,
        scores: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Mark a pending submission scored (with ``scores``) or rejected (with ``error``)."""
        status = "scored" if scores is not None else "rejected"
        with self._connect() as db:
            db.execute(
                "UPDATE submissions SET status = ?, meta_json = ?, scores_json = ?, error = ? "
                "WHERE id = ? AND status = 'pending'",
                (
                    status,
                    json.dumps(meta) if meta is not None else None,
                    json.dumps(scores) if scores is not None else None,
                    error,
                    submission_id,
                ),
            )

    def reject_pending(self, reason: str = "the server stopped while scoring it") -> int:
        """Mark every pending submission rejected (run at start-up); return how many."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE submissions SET status = 'rejected', error = ? WHERE status = 'pending'",
                (reason,),
            )
        return cursor.rowcount

    def submissions(
        self, *, team: Team | None = None, status: str | None = None
    ) -> list[StoredSubmission]:
        """Return submissions in upload order, optionally of one team and/or one status."""
        query = (
            "SELECT s.id, t.name, s.created_at, s.status, s.filename, s.size_bytes, s.meta_json, "
            "s.scores_json, s.error FROM submissions s JOIN teams t ON t.id = s.team_id"
        )
        clauses: list[str] = []
        args: list[Any] = []
        if team is not None:
            clauses.append("s.team_id = ?")
            args.append(team.id)
        if status is not None:
            clauses.append("s.status = ?")
            args.append(status)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY s.created_at, s.id"
        with self._connect() as db:
            rows = db.execute(query, args).fetchall()
        return [
            StoredSubmission(
                id=r[0],
                team=r[1],
                created_at=r[2],
                status=r[3],
                filename=r[4],
                size_bytes=r[5],
                meta=json.loads(r[6]) if r[6] else None,
                scores=json.loads(r[7]) if r[7] else None,
                error=r[8],
            )
            for r in rows
        ]

    def content(self, submission_id: int) -> bytes | None:
        """Return the uploaded bytes of a submission, if kept."""
        with self._connect() as db:
            row = db.execute(
                "SELECT content FROM submissions WHERE id = ?", (submission_id,)
            ).fetchone()
        return zlib.decompress(row[0]) if row and row[0] is not None else None

    def integrity_ok(self) -> bool:
        """Return whether SQLite's integrity check passes."""
        with self._connect() as db:
            return bool(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
