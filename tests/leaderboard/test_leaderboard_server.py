"""The leaderboard server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from leaderboard_fixtures import (
    SERVER_MAX_BYTES,
    LiveServer,
    Published,
    make_meta,
    post_submission,
    rgb_labels,
    running,
    write_preds,
)

from msrgb_bench.leaderboard.server import ServerConfig
from msrgb_bench.leaderboard.store import Store, hash_token
from msrgb_bench.leaderboard.submission import sidecar_json, write_submission
from msrgb_bench.leaderboard.truth import (
    GroundTruth,
    read_private_labels,
    write_private_labels,
)


def _preds_with_errors(tmp_path: Path, published: Published, wrong: int, **meta: object) -> Path:
    """Predictions that get the first ``wrong`` test samples wrong (label + 1)."""
    ids, y = rgb_labels(published.info)
    preds = y.copy()
    preds[:wrong] = (preds[:wrong] + 1) % 3
    name = f"preds-{wrong}-{abs(hash(tuple(sorted(meta.items())))) % 10**8}.csv"
    return write_preds(tmp_path / name, ids, preds, make_meta(published.info, **meta))


def _forged_sidecar(data: bytes, published: Published, **meta: object) -> bytes:
    import hashlib

    return sidecar_json(
        make_meta(published.info, **meta), "x.csv", hashlib.sha256(data).hexdigest()
    ).encode()


# --- scoring and reading back -----------------------------------------------------------------


def test_submission_is_scored_stored_and_shown(
    live_server: LiveServer, published: Published, tmp_path: Path
) -> None:
    token = live_server.add_team("alpha")
    path = _preds_with_errors(tmp_path, published, wrong=2, method="sembridge", notes="n")
    answer = post_submission(live_server, token, path)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # labels 0 1 2 0 1 2 0 1 2; the first two predicted as 1 and 2: OA 7/9, rows true 0 and 1
    scores = body["scores"]
    assert scores["oa"] == pytest.approx(7 / 9)
    assert scores["confusion_matrix"] == [[2, 1, 0], [0, 2, 1], [0, 0, 3]]
    assert body["team"] == "alpha"

    board = httpx.get(live_server.url + "/api/leaderboard").json()
    (entry,) = [e for e in board["measured"] if e["team"] == "alpha"]
    assert entry["entry_id"] == body["entry_id"]
    assert entry["metrics"]["oa"] == {"mean": pytest.approx(7 / 9), "std": None}
    assert entry["method"] == "sembridge" and entry["n_seeds"] == 1

    detail = httpx.get(f"{live_server.url}/api/entries/{entry['entry_id']}").json()
    assert detail["confusion_matrix"] == scores["confusion_matrix"]
    assert [r["recall"] for r in detail["per_class"]] == pytest.approx([2 / 3, 2 / 3, 1.0])

    page = httpx.get(f"{live_server.url}/entry/{entry['entry_id']}")
    assert page.status_code == 200 and "sembridge" in page.text
    plot = httpx.get(f"{live_server.url}/entry/{entry['entry_id']}/confusion.png")
    assert plot.headers["content-type"] == "image/png"
    assert plot.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert httpx.get(f"{live_server.url}/entry/0123456789abcdef").status_code == 404
    assert httpx.get(f"{live_server.url}/api/entries/..%2F..%2Fetc").status_code == 404


def test_multilabel_submission(
    live_server: LiveServer, published_multilabel: Published, tmp_path: Path
) -> None:
    token = live_server.add_team("multi")
    truth = read_private_labels(published_multilabel.private_labels)
    target = truth.target("test", "ms")
    scores = np.where(target.y == 1, 0.8, 0.3)
    scores[0] = 0.6  # row 0 (label forest only) now predicts every class: 2 false positives
    frame = pd.DataFrame({"sample_id": target.sample_ids})
    for k, name in enumerate(truth.classes):
        frame[f"pred_{name}"] = (scores[:, k] >= 0.5).astype(int)
        frame[f"prob_{name}"] = scores[:, k]
    meta = make_meta(published_multilabel.info, modality="ms", threshold=0.5)
    path = write_submission(tmp_path / "ml.parquet", frame, meta)
    answer = post_submission(live_server, token, path)
    assert answer.status_code == 200, answer.text
    result = answer.json()["scores"]
    assert result["task"] == "multi-label"
    assert result["macro_map"] == pytest.approx(1.0)  # the scores still rank every class right
    # positives: 9 + 4 (odd rows carry two labels) = 13 true positives, 2 false positives
    assert result["micro_f1"] == pytest.approx(2 * 13 / (2 * 13 + 2))


# --- tokens and rate limit --------------------------------------------------------------------


def test_missing_or_wrong_token_is_refused_and_tokens_are_stored_hashed(
    live_server: LiveServer, published: Published, tmp_path: Path
) -> None:
    token = live_server.add_team("tokens")
    path = _preds_with_errors(tmp_path, published, wrong=0)
    missing = post_submission(live_server, None, path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert post_submission(live_server, token + "x", path).status_code == 401
    assert httpx.get(live_server.url + "/api/submissions").status_code == 401
    raw = b"".join(p.read_bytes() for p in live_server.config.db.parent.iterdir() if p.is_file())
    assert token.encode() not in raw
    with sqlite3.connect(live_server.config.db) as db:
        stored = db.execute("SELECT token_sha256 FROM teams WHERE name = 'tokens'").fetchone()
    assert stored == (hash_token(token),)


def test_one_counted_submission_per_interval(
    live_server: LiveServer, published: Published, tmp_path: Path
) -> None:
    token = live_server.add_team("gamma")
    bad = _preds_with_errors(tmp_path, published, wrong=0)
    bad_data = bad.read_bytes().replace(b'"rgb-test-0008",2\n', b"")
    rejected = post_submission(
        live_server,
        token,
        bad,
        data=bad_data,
        metadata=_forged_sidecar(bad_data, published),
    )
    assert rejected.status_code == 400
    assert "1 missing sample_id(s): 'rgb-test-0008'" in rejected.json()["detail"]
    first = post_submission(live_server, token, bad)  # a rejected upload does not count
    assert first.status_code == 200
    second = post_submission(live_server, token, _preds_with_errors(tmp_path, published, 1))
    assert second.status_code == 429
    assert 3590 <= int(second.headers["retry-after"]) <= 3600
    statuses = [
        s["status"]
        for s in httpx.get(
            live_server.url + "/api/submissions", headers={"Authorization": f"Bearer {token}"}
        ).json()["submissions"]
    ]
    assert statuses == ["rejected", "scored"]


# --- hostile uploads --------------------------------------------------------------------------


def test_hostile_uploads_are_refused_without_harm(
    live_server: LiveServer, published: Published, tmp_path: Path
) -> None:
    token = live_server.add_team("hostile")
    path = _preds_with_errors(tmp_path, published, wrong=0)
    store = Store(live_server.config.db)
    before = len(store.submissions(status="scored"))

    over = b"x" * (SERVER_MAX_BYTES + 1)
    answer = post_submission(live_server, token, path, data=over, metadata=b"{}")
    assert answer.status_code == 413
    assert f"over the size limit of {SERVER_MAX_BYTES} bytes" in answer.json()["detail"]
    huge = post_submission(live_server, token, path, data=b"y" * (4 * SERVER_MAX_BYTES))
    assert huge.status_code == 413  # cut off by the body limit while streaming in

    junk = bytes(range(256)) * 50
    answer = post_submission(
        live_server, token, path, data=junk, metadata=_forged_sidecar(junk, published)
    )
    assert answer.status_code == 400
    assert "not a readable CSV file" in answer.json()["detail"]

    answer = post_submission(live_server, token, path, metadata=b"\x00\xff not json")
    assert answer.status_code == 400
    assert "metadata is not valid JSON" in answer.json()["detail"]

    ids, y = rgb_labels(published.info)
    frame = pd.DataFrame({"sample_id": ["../../../etc/passwd", *ids[1:]], "pred": y})
    evil = write_submission(tmp_path / "evil.csv", frame, make_meta(published.info))
    answer = post_submission(live_server, token, evil, name="../../../../tmp/evil.csv")
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert detail.startswith("evil.csv: ")
    assert "1 extra sample_id(s) not in the scored split: '../../../etc/passwd'" in detail
    assert not Path("/tmp/evil.csv").exists()

    wrong_hash = _forged_sidecar(path.read_bytes(), published, dataset_hash="e" * 64)
    answer = post_submission(live_server, token, path, metadata=wrong_hash)
    assert answer.status_code == 400 and "is not scored by this server" in answer.text

    assert store.integrity_ok()
    assert len(store.submissions(status="scored")) == before
    assert store.submissions(status="pending") == []
    mine = store.submissions(team=store.team_for_token(token))
    assert [s.status for s in mine] == ["rejected"] * 5  # the 413s of the body limit never arrive
    assert mine[-2].filename == "evil.csv"
    # and the team can still submit
    assert post_submission(live_server, token, path).status_code == 200


def test_names_are_shown_as_text(
    live_server: LiveServer, published: Published, tmp_path: Path
) -> None:
    token = live_server.add_team("xss")
    method = "<script>alert(1)</script>"
    path = _preds_with_errors(tmp_path, published, wrong=0, method=method)
    assert post_submission(live_server, token, path).status_code == 200
    page = httpx.get(live_server.url + "/").text
    assert method not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- privacy ----------------------------------------------------------------------------------


def test_teams_see_only_their_own_private_details(
    live_server: LiveServer, published: Published, tmp_path: Path
) -> None:
    token_a, token_b = live_server.add_team("private-a"), live_server.add_team("private-b")
    path = _preds_with_errors(
        tmp_path, published, wrong=1, notes="SECRET-NOTE", config_hash="SECRET-CFG"
    )
    sid = post_submission(live_server, token_a, path).json()["submission_id"]
    as_a = {"Authorization": f"Bearer {token_a}"}
    as_b = {"Authorization": f"Bearer {token_b}"}
    own = httpx.get(f"{live_server.url}/api/submissions/{sid}", headers=as_a).json()
    assert own["meta"]["notes"] == "SECRET-NOTE" and own["filename"] == path.name
    assert httpx.get(f"{live_server.url}/api/submissions/{sid}", headers=as_b).status_code == 404
    assert httpx.get(f"{live_server.url}/api/submissions", headers=as_b).json() == {
        "team": "private-b",
        "submissions": [],
    }
    public = [
        httpx.get(live_server.url + "/api/leaderboard").text,
        httpx.get(live_server.url + "/").text,
    ]
    entry = next(e for e in json.loads(public[0])["measured"] if e["team"] == "private-a")
    public.append(httpx.get(f"{live_server.url}/api/entries/{entry['entry_id']}").text)
    public.append(httpx.get(f"{live_server.url}/entry/{entry['entry_id']}").text)
    for text in public:
        assert "SECRET-NOTE" not in text and "SECRET-CFG" not in text
        assert path.name not in text


# --- concurrency and restart ------------------------------------------------------------------


def test_concurrent_submissions(
    live_server: LiveServer, published: Published, tmp_path: Path
) -> None:
    teams = [live_server.add_team(f"crowd-{i}") for i in range(10)]
    burst = live_server.add_team("burst")
    path = _preds_with_errors(tmp_path, published, wrong=3)
    jobs = [*teams, *[burst] * 6]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        codes = list(pool.map(lambda t: post_submission(live_server, t, path).status_code, jobs))
    assert codes[:10] == [200] * 10
    assert sorted(codes[10:]) == [200, 429, 429, 429, 429, 429]
    store = Store(live_server.config.db)
    assert store.integrity_ok()
    assert store.submissions(status="pending") == []
    crowd = [s for s in store.submissions(status="scored") if s.team.startswith("crowd-")]
    assert len(crowd) == 10
    assert all(s.scores and s.scores["oa"] == pytest.approx(6 / 9) for s in crowd)


def test_restart_loses_nothing(published: Published, tmp_path: Path) -> None:
    config = ServerConfig(labels=(published.private_labels,), db=tmp_path / "lb.sqlite", n_boot=5)
    with running(config) as server:
        token = server.add_team("steady")
        answer = post_submission(server, token, _preds_with_errors(tmp_path, published, 2))
        assert answer.status_code == 200
        board_before = httpx.get(server.url + "/api/leaderboard").json()
        store = Store(config.db)
        team = store.team_for_token(token)
        assert team is not None
        crashed = store.reserve(team, "mid-scoring.csv", b"...", interval_s=0)  # never finished
    with running(config) as server:
        assert httpx.get(server.url + "/api/leaderboard").json() == board_before
        mine = httpx.get(
            server.url + "/api/submissions", headers={"Authorization": f"Bearer {token}"}
        ).json()["submissions"]
        assert [(s["submission_id"], s["status"]) for s in mine] == [
            (answer.json()["submission_id"], "scored"),
            (crashed, "rejected"),
        ]
        assert mine[1]["error"] == "the server stopped while scoring it"


# --- labels never leave the server ------------------------------------------------------------


def _shifted_labels(published: Published, path: Path) -> Path:
    """Another label file for the same dataset: every test label changed, same class counts."""
    truth = read_private_labels(published.private_labels)
    samples = truth.samples.sort_values("sample_id").reset_index(drop=True)
    for modality in ("ms", "rgb"):
        rows = samples.index[samples["modality"] == modality]
        samples.loc[rows, "label"] = np.roll(samples.loc[rows, "label"].to_numpy(), 1)
    samples["labels"] = [[int(v)] for v in samples["label"]]
    shifted = GroundTruth(
        truth.dataset, truth.dataset_hash, truth.classes, truth.multilabel, samples
    )
    assert shifted.target("test", "rgb").y.tolist() != truth.target("test", "rgb").y.tolist()
    return write_private_labels(shifted, path)


def test_no_response_depends_on_the_labels(published: Published, tmp_path: Path) -> None:
    # Two servers whose label files differ in every test label (with the same class counts)
    # must answer every request that is not a successful score identically: no page, error
    # or endpoint carries label information. Neither may reveal the label file.
    other = _shifted_labels(published, tmp_path / "other" / "labels.parquet")
    ids, y = rgb_labels(published.info)
    out_of_range = pd.DataFrame({"sample_id": ids, "pred": np.full(len(ids), 5)})
    missing = pd.DataFrame({"sample_id": ids[:-2], "pred": y[:-2]})
    uploads = [
        write_submission(tmp_path / "range.csv", out_of_range, make_meta(published.info)),
        write_submission(tmp_path / "missing.csv", missing, make_meta(published.info)),
        write_submission(
            tmp_path / "val.csv",
            pd.DataFrame({"sample_id": ids, "pred": y}),
            make_meta(published.info, split="val"),
        ),
    ]
    probes = ["/", "/api/leaderboard", "/api/health", "/labels", "/api/labels",
              "/private/labels.parquet", "/static/labels.parquet", "/openapi.json",
              "/entry/0000000000000000", "/api/entries/0000000000000000"]  # fmt: skip
    answers: list[list[tuple[int, str]]] = []
    for labels, name in ((published.private_labels, "a"), (other, "b")):
        config = ServerConfig(labels=(labels,), db=tmp_path / f"{name}.sqlite", interval_s=0)
        with running(config) as server:
            token = server.add_team("probe")
            seen = [(r.status_code, r.text) for r in (httpx.get(server.url + p) for p in probes)]
            for upload in uploads:
                r = post_submission(server, token, upload)
                seen.append((r.status_code, r.text))
            answers.append(seen)
            for _, text in seen:
                assert "labels.parquet" not in text and str(labels) not in text
    assert answers[0] == answers[1]
    codes = [code for code, _ in answers[0]]
    assert codes == [200, 200, 200, 404, 404, 404, 404, 200, 404, 404, 400, 400, 400]
