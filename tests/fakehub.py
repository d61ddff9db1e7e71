"""A small Hugging Face Hub-compatible file server on 127.0.0.1, for tests (no pytest inside).

It answers what ``huggingface_hub`` needs to download files and read repo info:

* ``HEAD``/``GET /{repo_type}s/{repo_id}/resolve/{revision}/{path}`` (and ``/{repo_id}/resolve/...``
  for models): the file, with ``ETag`` (the file's sha256, as the Hub gives for LFS files),
  ``X-Repo-Commit``, ``Content-Length`` and ``Accept-Ranges``; ``Range`` requests get ``206``.
  Unknown repos, revisions and files get 404 with the Hub's ``X-Error-Code`` header.
* ``GET /api/{repo_type}s/{repo_id}[/revision/{revision}]``: repo info with ``sha`` and
  ``siblings`` (``rfilename``, ``size``, ``lfs``).
* ``GET /api/{repo_type}s/{repo_id}/tree/{revision}[/{folder}][?recursive=true]``: the tree
  listing ``snapshot_download`` reads (one page).

Storage under ``root_dir``::

    <repo_type>s/<repo_id>/commits/<40-hex commit>/<path in repo>
    <repo_type>s/<repo_id>/refs/<branch>          text file holding a commit

Uploads, as ``huggingface_hub``'s ``create_repo`` / ``create_branch`` / ``upload_folder`` make them:

* ``POST /api/repos/create``: a new repo with an initial commit (``.gitattributes``) on ``main``;
  409 if it exists. The request body is kept in :attr:`FakeHub.created`.
* ``POST /api/validate-yaml``: the README's YAML front matter must parse (400 otherwise).
* ``POST /api/{repo_type}s/{repo_id}/branch/{branch}``: a branch at ``main`` (409 if it exists).
* ``POST /api/{repo_type}s/{repo_id}/preupload/{revision}``: every file is ``regular`` (sent
  base64-encoded in the commit), so no LFS or Xet storage is needed.
* ``POST /api/{repo_type}s/{repo_id}/commit/{revision}``: the ndjson commit (``file``,
  ``deletedFile``, ``deletedFolder``; ``lfsFile`` is refused) becomes a new commit whose parent is
  the branch head (412 if ``parentCommit`` differs).

Fill it with :meth:`FakeHub.add_file`. :meth:`FakeHub.interrupt_once` makes the next ``GET`` of
a file close the connection after some bytes (to test resumed downloads). Every request is
recorded in :attr:`FakeHub.requests`. The FastAPI app is :attr:`FakeHub.app`, so more endpoints
(uploads, commits) can be added to it.

Usage::

    with FakeHub(tmp_path) as hub:
        hub.add_file("org/data", "a.zip", Path("a.zip"), revision="0" * 40)
        hf_hub_download("org/data", "a.zip", repo_type="dataset", revision="0" * 40,
                        endpoint=hub.url)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

COMMIT_RE = re.compile(r"[0-9a-f]{40}")
REPO_TYPES = ("model", "dataset", "space")
DEFAULT_BRANCH = "main"


class _DroppedOnPurposeError(Exception):
    """Raised inside a response body to drop the connection on purpose."""


class _DropIntendedInterruptions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _DroppedOnPurposeError))


class _Recorder:
    """Pure ASGI middleware appending every HTTP request to a list (leaves errors untouched)."""

    def __init__(self, app: Any, records: list[RequestRecord]) -> None:
        self.app = app
        self.records = records

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            range_header = headers.get(b"range")
            self.records.append(
                RequestRecord(
                    scope["method"], scope["path"], range_header.decode() if range_header else None
                )
            )
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received.

    Attributes:
        method: HTTP method.
        path: URL path.
        range: The ``Range`` header, if any.
    """

    method: str
    path: str
    range: str | None


class FakeHub:
    """A Hub-compatible file server running in a background thread.

    Args:
        root_dir: Folder holding the repositories (created if missing).
    """

    def __init__(self, root_dir: str | Path) -> None:
        self.root = Path(root_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[RequestRecord] = []
        self.created: dict[str, dict[str, Any]] = {}
        self._interrupts: dict[Path, int] = {}
        self._sha256: dict[tuple[Path, int, int], str] = {}
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self.app = FastAPI()
        self._add_routes()

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the endpoint, e.g. ``http://127.0.0.1:54321`` (the server must be started)."""
        if self._port is None:
            raise RuntimeError("FakeHub is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self, timeout: float = 10.0) -> FakeHub:
        """Start serving on a free port of 127.0.0.1 and return ``self``."""
        if self._server is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fakehub", daemon=True
        )
        logging.getLogger("uvicorn.error").addFilter(_DropIntendedInterruptions())
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("FakeHub did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- content ------------------------------------------------------------------------------

    def repo_dir(self, repo_id: str, repo_type: str = "dataset") -> Path:
        """Return the folder of a repository."""
        if repo_type not in REPO_TYPES:
            raise ValueError(f"repo_type must be one of {REPO_TYPES}, not {repo_type!r}")
        return self.root / f"{repo_type}s" / repo_id

    def add_file(
        self,
        repo_id: str,
        path_in_repo: str,
        source: str | Path | bytes,
        *,
        revision: str,
        repo_type: str = "dataset",
        branch: str | None = DEFAULT_BRANCH,
    ) -> Path:
        """Store a file at a commit (and point ``branch`` at that commit).

        Args:
            repo_id: ``namespace/name``.
            path_in_repo: Path of the file inside the repository.
            source: A file to copy, or the bytes themselves.
            revision: The 40-hex commit the file belongs to.
            repo_type: ``dataset``, ``model`` or ``space``.
            branch: Branch to point at ``revision`` (``None``: leave the refs alone).

        Returns:
            Where the file is stored.
        """
        if not COMMIT_RE.fullmatch(revision):
            raise ValueError(f"revision must be a 40-hex commit, not {revision!r}")
        target = self.repo_dir(repo_id, repo_type) / "commits" / revision / path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
        if branch is not None:
            self.set_ref(repo_id, branch, revision, repo_type=repo_type)
        return target

    def set_ref(
        self, repo_id: str, branch: str, commit: str, *, repo_type: str = "dataset"
    ) -> None:
        """Point ``branch`` of a repository at ``commit``."""
        ref = self.repo_dir(repo_id, repo_type) / "refs" / branch
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit, encoding="ascii")

    def interrupt_once(
        self,
        repo_id: str,
        path_in_repo: str,
        after_bytes: int,
        *,
        revision: str,
        repo_type: str = "dataset",
    ) -> None:
        """Make the next full ``GET`` of a file drop the connection after ``after_bytes`` bytes."""
        path = self.repo_dir(repo_id, repo_type) / "commits" / revision / path_in_repo
        with self._lock:
            self._interrupts[path] = after_bytes

    # --- resolution ---------------------------------------------------------------------------

    def resolve_commit(self, repo_id: str, revision: str, repo_type: str = "dataset") -> str | None:
        """Return the commit a revision (commit or branch) names, or ``None``."""
        repo = self.repo_dir(repo_id, repo_type)
        if COMMIT_RE.fullmatch(revision) and (repo / "commits" / revision).is_dir():
            return revision
        ref = repo / "refs" / revision
        if ref.is_file():
            return ref.read_text(encoding="ascii").strip()
        return None

    def _file_sha256(self, path: Path) -> str:
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._sha256.get(key)
        if cached is None:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
            cached = digest.hexdigest()
            with self._lock:
                self._sha256[key] = cached
        return cached

    @staticmethod
    def _error(code: str, message: str, commit: str | None = None) -> Response:
        headers = {"X-Error-Code": code, "X-Error-Message": message}
        if commit is not None:
            headers["X-Repo-Commit"] = commit
        return JSONResponse({"error": message}, status_code=404, headers=headers)

    # --- routes -------------------------------------------------------------------------------

    def _add_routes(self) -> None:
        app = self.app

        app.add_middleware(_Recorder, records=self.requests)
        self._add_upload_routes()

        @app.get("/api/{kind}/{rest:path}")
        def repo_info(kind: str, rest: str, request: Request) -> Response:
            repo_type = kind[:-1] if kind.endswith("s") else kind
            if repo_type not in REPO_TYPES:
                return self._error("RepoNotFound", f"unknown repo type {kind}")
            repo_id, sep, tree = rest.partition("/tree/")
            if sep:
                revision, _, folder = tree.partition("/")
                recursive = request.query_params.get("recursive", "").lower() == "true"
                return self._tree(repo_id, revision, folder, recursive, repo_type)
            repo_id, _, revision = rest.partition("/revision/")
            return self._repo_info(repo_id, revision or DEFAULT_BRANCH, repo_type)

        for prefix, repo_type in (("/datasets", "dataset"), ("/spaces", "space"), ("", "model")):
            app.add_api_route(
                f"{prefix}/{{rest:path}}", self._resolver(repo_type), methods=["GET", "HEAD"]
            )

    def _add_upload_routes(self) -> None:
        app = self.app

        @app.post("/api/repos/create")
        async def create_repo(request: Request) -> Response:
            body = await request.json()
            repo_type = body.get("type") or "model"
            name = body["name"]
            repo_id = f"{body['organization']}/{name}" if body.get("organization") else name
            prefix = "" if repo_type == "model" else f"/{repo_type}s"
            url = f"{self.url}{prefix}/{repo_id}"
            if self.repo_dir(repo_id, repo_type).is_dir():
                # As the Hub: 409 with the repo's url (create_repo(exist_ok=True) reads it).
                body = {"error": "You already created this repo", "url": url}
                return JSONResponse(body, status_code=409)
            self.created[repo_id] = body
            self._write_commit(repo_id, repo_type, None, {".gitattributes": b"*.npy filter=lfs\n"})
            return JSONResponse({"url": url, "name": repo_id})

        @app.post("/api/validate-yaml")
        async def validate_yaml(request: Request) -> Response:
            content = (await request.json())["content"]
            match = re.match(r"^---\n(.*?)\n---\n", content, flags=re.DOTALL)
            try:
                if match:
                    yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                errors = [{"message": f"invalid YAML front matter: {exc}"}]
                return JSONResponse({"errors": errors, "warnings": []}, status_code=400)
            return JSONResponse({"errors": [], "warnings": []})

        @app.post("/api/{kind}/{rest:path}")
        async def repo_post(kind: str, rest: str, request: Request) -> Response:
            repo_type = kind[:-1] if kind.endswith("s") else kind
            for action in ("branch", "preupload", "commit"):
                repo_id, sep, revision = rest.partition(f"/{action}/")
                if sep:
                    break
            else:
                return JSONResponse({"error": "not found"}, status_code=404)
            if repo_type not in REPO_TYPES or not self.repo_dir(repo_id, repo_type).is_dir():
                return self._error("RepoNotFound", f"repository {repo_id} not found")
            if action == "branch":
                return self._create_branch(repo_id, repo_type, revision)
            head = self.resolve_commit(repo_id, revision, repo_type)
            if head is None:
                return self._error(
                    "RevisionNotFound", f"revision {revision} not found in {repo_id}"
                )
            if action == "preupload":
                files = (await request.json())["files"]
                modes = [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in files
                ]
                return JSONResponse({"files": modes, "commitOid": head})
            return self._commit(repo_id, repo_type, revision, head, await request.body())

    def _create_branch(self, repo_id: str, repo_type: str, branch: str) -> Response:
        if (self.repo_dir(repo_id, repo_type) / "refs" / branch).is_file():
            return JSONResponse({"error": f"branch {branch} already exists"}, status_code=409)
        head = self.resolve_commit(repo_id, DEFAULT_BRANCH, repo_type)
        if head is None:
            return self._error("RevisionNotFound", f"{repo_id} has no {DEFAULT_BRANCH} branch")
        self.set_ref(repo_id, branch, head, repo_type=repo_type)
        return JSONResponse({})

    def _commit(
        self, repo_id: str, repo_type: str, branch: str, head: str, body: bytes
    ) -> Response:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = lines[0]["value"] if lines and lines[0]["key"] == "header" else {}
        parent = header.get("parentCommit")
        if parent is not None and not head.startswith(parent):
            return JSONResponse({"error": f"{branch} is at {head}, not {parent}"}, status_code=412)
        added: dict[str, bytes] = {}
        deleted: list[str] = []
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                added[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"].rstrip("/"))
            else:
                return JSONResponse({"error": f"{line['key']} is not supported"}, status_code=400)
        commit = self._write_commit(repo_id, repo_type, head, added, deleted)
        self.set_ref(repo_id, branch, commit, repo_type=repo_type)
        prefix = "" if repo_type == "model" else f"/{repo_type}s"
        return JSONResponse(
            {
                "commitUrl": f"{self.url}{prefix}/{repo_id}/commit/{commit}",
                "commitOid": commit,
                "pullRequestUrl": None,
            }
        )

    def _write_commit(
        self,
        repo_id: str,
        repo_type: str,
        parent: str | None,
        added: dict[str, bytes],
        deleted: Sequence[str] = (),
    ) -> str:
        """Write a new commit: the parent's tree, minus ``deleted``, plus ``added``."""
        with self._lock:
            digest = hashlib.sha1(f"{repo_id}\0{parent}\0{len(self.requests)}".encode())
            for path in sorted(added):
                digest.update(path.encode() + b"\0" + added[path])
            commit = digest.hexdigest()
        commits = self.repo_dir(repo_id, repo_type) / "commits"
        target = commits / commit
        if parent is not None:
            shutil.copytree(commits / parent, target)
        target.mkdir(parents=True, exist_ok=True)
        for path in deleted:
            victim = target / path
            if victim.is_dir():
                shutil.rmtree(victim)
            else:
                victim.unlink(missing_ok=True)
        for path, data in added.items():
            file = target / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        if parent is None:
            self.set_ref(repo_id, DEFAULT_BRANCH, commit, repo_type=repo_type)
        return commit

    def _resolver(self, repo_type: str) -> Any:
        def resolve(request: Request, rest: str) -> Response:
            return self._resolve(request, rest, repo_type)

        return resolve

    def _repo_info(self, repo_id: str, revision: str, repo_type: str) -> Response:
        if not self.repo_dir(repo_id, repo_type).is_dir():
            return self._error("RepoNotFound", f"repository {repo_id} not found")
        commit = self.resolve_commit(repo_id, revision, repo_type)
        if commit is None:
            return self._error("RevisionNotFound", f"revision {revision} not found in {repo_id}")
        folder = self.repo_dir(repo_id, repo_type) / "commits" / commit
        siblings = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            size = path.stat().st_size
            siblings.append(
                {
                    "rfilename": path.relative_to(folder).as_posix(),
                    "size": size,
                    "lfs": {"sha256": self._file_sha256(path), "size": size, "pointerSize": 134},
                }
            )
        return JSONResponse(
            {
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "author": repo_id.split("/")[0] if "/" in repo_id else None,
                "sha": commit,
                "private": False,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            },
            headers={"X-Repo-Commit": commit},
        )

    def _tree(
        self, repo_id: str, revision: str, folder: str, recursive: bool, repo_type: str
    ) -> Response:
        """``list_repo_tree`` (one page): files with their blob oid and LFS sha256, and folders."""
        if not self.repo_dir(repo_id, repo_type).is_dir():
            return self._error("RepoNotFound", f"repository {repo_id} not found")
        commit = self.resolve_commit(repo_id, revision, repo_type)
        if commit is None:
            return self._error("RevisionNotFound", f"revision {revision} not found in {repo_id}")
        top = self.repo_dir(repo_id, repo_type) / "commits" / commit
        base = top / folder if folder else top
        if not base.is_dir():
            return self._error("EntryNotFound", f"{folder} not found in {repo_id}", commit)
        entries = []
        for path in sorted(base.rglob("*") if recursive else base.iterdir()):
            rel = path.relative_to(top).as_posix()
            if path.is_dir():
                oid = hashlib.sha1(rel.encode()).hexdigest()
                entries.append({"type": "directory", "path": rel, "oid": oid})
                continue
            size = path.stat().st_size
            blob = hashlib.sha1(b"blob %d\0" % size + path.read_bytes()).hexdigest()
            lfs = {"oid": self._file_sha256(path), "size": size, "pointerSize": 134}
            entries.append({"type": "file", "path": rel, "size": size, "oid": blob, "lfs": lfs})
        return JSONResponse(entries, headers={"X-Repo-Commit": commit})

    def _resolve(self, request: Request, rest: str, repo_type: str) -> Response:
        repo_id, sep, tail = rest.partition("/resolve/")
        if not sep or "/" not in tail:
            return JSONResponse({"error": "not found"}, status_code=404)
        revision, _, path_in_repo = tail.partition("/")
        if not self.repo_dir(repo_id, repo_type).is_dir():
            return self._error("RepoNotFound", f"repository {repo_id} not found")
        commit = self.resolve_commit(repo_id, revision, repo_type)
        if commit is None:
            return self._error("RevisionNotFound", f"revision {revision} not found in {repo_id}")
        path = self.repo_dir(repo_id, repo_type) / "commits" / commit / path_in_repo
        if not path.is_file():
            return self._error("EntryNotFound", f"{path_in_repo} not found in {repo_id}", commit)
        headers = {
            "ETag": f'"{self._file_sha256(path)}"',
            "X-Repo-Commit": commit,
            "Accept-Ranges": "bytes",
        }
        if request.method == "GET" and request.headers.get("range") is None:
            with self._lock:
                after = self._interrupts.pop(path, None)
            if after is not None:
                headers["Content-Length"] = str(path.stat().st_size)
                return StreamingResponse(_truncated(path, after), headers=headers)
        return FileResponse(path, headers=headers, media_type="application/octet-stream")


def _truncated(path: Path, after: int) -> Iterator[bytes]:
    """Yield the first ``after`` bytes of a file, then drop the connection."""
    with open(path, "rb") as handle:
        yield handle.read(after)
    raise _DroppedOnPurposeError(
        f"connection dropped on purpose after {after} bytes of {path.name}"
    )
