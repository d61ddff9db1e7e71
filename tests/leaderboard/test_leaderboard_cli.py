"""The leaderboard commands: evaluate, release, add-team, submit, leaderboard."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from leaderboard_fixtures import (
    LiveServer,
    Published,
    make_dataset,
    make_meta,
    rgb_labels,
    write_preds,
)

from msrgb_bench.cli import main
from msrgb_bench.leaderboard.metrics import score_single_label
from msrgb_bench.leaderboard.store import Store
from msrgb_bench.leaderboard.submission import write_submission


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _preds(tmp_path: Path, published: Published, wrong: int, name: str = "p.csv") -> Path:
    ids, y = rgb_labels(published.info)
    preds = y.copy()
    preds[:wrong] = (preds[:wrong] + 1) % 3
    return write_preds(tmp_path / name, ids, preds, make_meta(published.info))


def test_evaluate_json(tmp_path: Path, published: Published) -> None:
    path = _preds(tmp_path, published, wrong=3)
    code, out = _run("evaluate", str(path), "--data", str(published.full_dir), "--json",
                     "--bootstrap", "20")  # fmt: skip
    assert code == 0, out
    body = json.loads(out)
    assert body["oa"] == pytest.approx(6 / 9)
    assert body["aa"] == pytest.approx(6 / 9)  # one error in each class: recall 2/3 each
    assert set(body) >= {"oa", "aa", "kappa", "macro_f1", "per_class", "confusion_matrix"}
    assert body["confusion_matrix"] == [[2, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert body["intervals"]["oa"][0] <= 6 / 9 <= body["intervals"]["oa"][1]
    code, text = _run("evaluate", str(path), "--labels", str(published.private_labels),
                      "--bootstrap", "0")  # fmt: skip
    assert code == 0, text
    assert "OA          66.67 %" in text and "| sea_lake | 66.67 |" in text


def test_evaluate_invalid_input_exits_non_zero(tmp_path: Path, published: Published) -> None:
    ids, y = rgb_labels(published.info)
    path = write_preds(tmp_path / "short.csv", ids[:-1], y[:-1], make_meta(published.info))
    code, out = _run("evaluate", str(path), "--data", str(published.full_dir))
    assert code == 1
    assert "1 missing sample_id(s): 'rgb-test-0008'" in out
    code, out = _run("evaluate", str(path), "--data", str(published.public_dir))
    assert code == 1 and "hidden" in out
    code, out = _run("evaluate", str(path))
    assert code == 2 and "exactly one of --data DIR or --labels FILE" in out


def test_release_command(tmp_path: Path) -> None:
    make_dataset(tmp_path / "full")
    code, out = _run("release", str(tmp_path / "full"), "--out", str(tmp_path / "pub"),
                     "--labels", str(tmp_path / "private.parquet"))  # fmt: skip
    assert code == 0, out
    assert "(18 labels hidden)" in out
    assert (tmp_path / "pub" / "manifest.parquet").is_file()
    code, out = _run("release", str(tmp_path / "pub"), "--out", str(tmp_path / "x"),
                     "--labels", str(tmp_path / "y.parquet"))  # fmt: skip
    assert code == 1 and "already a public copy" in out


def test_add_team_prints_the_token_once(tmp_path: Path) -> None:
    db = tmp_path / "lb.sqlite"
    code, out = _run("leaderboard", "add-team", "Team One", "--db", str(db))
    assert code == 0, out
    token = out.strip().splitlines()[-1]
    team = Store(db).team_for_token(token)
    assert team is not None and team.name == "Team One"
    code, out = _run("leaderboard", "add-team", "Team One", "--db", str(db))
    assert code == 1 and "already exists" in out
    code, out = _run("leaderboard", "add-team", "../etc", "--db", str(db))
    assert code == 1 and "must be 1-64 letters" in out


def test_submit_and_read_the_board_from_the_server(
    tmp_path: Path, published: Published, live_server: LiveServer
) -> None:
    token = live_server.add_team("cli-team")
    path = _preds(tmp_path, published, wrong=1)
    code, out = _run("submit", str(path), "--server", live_server.url, "--token", "nope")
    assert code == 1 and "HTTP 401" in out
    code, out = _run("submit", str(path), "--server", live_server.url, "--token", token)
    assert code == 0, out
    assert "of team cli-team: scored" in out and "OA          88.89 %" in out
    code, out = _run("leaderboard", "--server", live_server.url, "--format", "json")
    assert code == 0
    board = json.loads(out)
    assert any(e["team"] == "cli-team" for e in board["measured"])
    code, out = _run("leaderboard", "--db", str(live_server.config.db), "--format", "csv")
    rows = pd.read_csv(io.StringIO(out))
    mine = rows[rows["team"] == "cli-team"].iloc[0]
    assert mine["oa_mean"] == pytest.approx(8 / 9) and mine["n_seeds"] == 1


def _stored(store: Store, token: str, seed: int, oa_errors: int, published: Published) -> None:
    """Store a scored submission directly (the board reads only the store)."""
    _, y = rgb_labels(published.info)
    preds = y.copy()
    preds[:oa_errors] = (preds[:oa_errors] + 1) % 3
    scores = score_single_label(y, preds, published.info.classes, n_boot=0)
    owner = store.team_for_token(token)
    assert owner is not None
    sid = store.reserve(owner, "p.csv", b"x", interval_s=0)
    meta = make_meta(published.info, seed=seed, method="kd").to_dict()
    store.finish(sid, meta=meta, scores=scores.to_dict())


def test_board_aggregates_seeds_and_keeps_the_paper_apart(
    tmp_path: Path, published: Published
) -> None:
    db = tmp_path / "lb.sqlite"
    store = Store(db)
    token = store.add_team("seeds")
    # seed 0 first with 3 errors, then again with 0 errors (the later one counts); seeds 1, 2
    # with 1 and 2 errors -> OA 9/9, 8/9, 7/9: mean 8/9, sample std 1/9.
    for seed, errors in ((0, 3), (0, 0), (1, 1), (2, 2)):
        _stored(store, token, seed, errors, published)
    code, out = _run("leaderboard", "--db", str(db), "--format", "json")
    assert code == 0, out
    board = json.loads(out)
    (entry,) = board["measured"]
    assert entry["seeds"] == [0, 1, 2] and entry["n_seeds"] == 3
    assert entry["metrics"]["oa"]["mean"] == pytest.approx(8 / 9)
    assert entry["metrics"]["oa"]["std"] == pytest.approx(1 / 9)
    assert entry["rank"] == 1
    reported = board["reported_in_paper"]
    assert {r["dataset"] for r in reported} == {"s2s-eu"}
    assert all(r["source"] == "reported in paper" for r in reported)
    sembridge = [r["value"] for r in reported if r["method"] == "sembridge" and not r["note"]]
    assert sembridge == [0.937]
    assert all("source" not in e for e in board["measured"])

    code, md = _run("leaderboard", "--db", str(db))
    assert code == 0
    measured_part, reference_part = md.split("### Reported in paper (not measured here)")
    assert "| 1 | kd | seeds | paper | best-val | 3 | 88.89 ± 11.11 |" in measured_part
    assert "93.7" not in measured_part
    assert "| s2s-eu (S2S-EU) | resnet34 | resnet34 | sembridge | 93.7 |  |" in reference_part
    assert "Not recoverable:" in reference_part


def test_leaderboard_needs_one_source(tmp_path: Path) -> None:
    code, out = _run("leaderboard")
    assert code == 2 and "exactly one of --server URL or --db FILE" in out
    code, out = _run("leaderboard", "--db", str(tmp_path / "none.sqlite"))
    assert code == 1 and "no such leaderboard store" in out
    assert not (tmp_path / "none.sqlite").exists()


def test_scoring_does_not_depend_on_row_order(tmp_path: Path, published: Published) -> None:
    ids, y = rgb_labels(published.info)
    order = np.random.default_rng(3).permutation(len(ids))
    meta = make_meta(published.info)
    frame = pd.DataFrame({"sample_id": np.asarray(ids)[order], "pred": y[order]})
    path = tmp_path / "shuffled.parquet"
    write_submission(path, frame, meta)
    code, out = _run("evaluate", str(path), "--data", str(published.full_dir), "--json",
                     "--bootstrap", "0")  # fmt: skip
    assert code == 0 and json.loads(out)["oa"] == 1.0


def test_serve_leaderboard_command(tmp_path: Path, published: Published) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = tmp_path / "served.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "msrgb_bench.cli", "serve-leaderboard",
         "--labels", str(published.private_labels), "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert health.json()["datasets"] == [
            {"dataset": "s2s-eu", "dataset_hash": published.info.content_hash}
        ]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert db.is_file()


def test_serve_leaderboard_refuses_a_bad_label_file(tmp_path: Path) -> None:
    junk = tmp_path / "labels.parquet"
    junk.write_bytes(b"not parquet")
    code, out = _run("serve-leaderboard", "--labels", str(junk), "--db", str(tmp_path / "x.db"))
    assert code == 1 and "labels.parquet: not a readable Parquet file" in out
