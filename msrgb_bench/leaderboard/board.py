"""The leaderboard itself: entries built from stored scores, and its Markdown/CSV/JSON forms.

An *entry* is one team's method on one dataset build, split, modality, teacher/student pair,
preset and checkpoint rule. Its seeds aggregate to mean and sample standard deviation
(:func:`~msrgb_bench.leaderboard.metrics.aggregate_seeds`); when a team submits the same seed
again, the latest submission of that seed counts. Entries are grouped per dataset, split,
modality and teacher/student pair and ranked by the task's primary metric (OA for
single-label, macro mAP for multi-label).

The board is a plain JSON-ready dict (what ``GET /api/leaderboard`` returns), so the same
formatters serve a local database and a remote server. Reference rows from the paper travel
under their own key, ``reported_in_paper``, and are formatted as their own table.

Only public facts appear here: a team's notes, config hash, code version, file names and
rejected submissions stay private.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from msrgb_bench.leaderboard.metrics import (
    MULTI_LABEL_METRICS,
    PRIMARY_METRIC,
    SINGLE_LABEL_METRICS,
    aggregate_seeds,
)
from msrgb_bench.leaderboard.reference import MISSING, REPORTED_LABEL, SOURCE
from msrgb_bench.leaderboard.store import StoredSubmission

ENTRY_KEYS = (
    "dataset",
    "dataset_hash",
    "split",
    "modality",
    "teacher_arch",
    "student_arch",
    "method",
    "preset",
    "checkpoint_rule",
    "team",
)
GROUP_KEYS = ("dataset", "split", "modality", "teacher_arch", "student_arch")
METRICS = tuple(dict.fromkeys(SINGLE_LABEL_METRICS + MULTI_LABEL_METRICS))
FORMATS = ("markdown", "csv", "json")
METRIC_TITLES = {
    "oa": "OA",
    "aa": "AA",
    "kappa": "kappa",
    "macro_f1": "macro-F1",
    "micro_map": "micro-mAP",
    "macro_map": "macro-mAP",
    "micro_f1": "micro-F1",
}


def entry_id(key: dict[str, Any]) -> str:
    """Return a stable 16-hex id of an entry key."""
    text = json.dumps([str(key[k]) for k in ENTRY_KEYS])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _none_if_nan(value: Any) -> Any:
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _per_seed_frame(submissions: Iterable[StoredSubmission]) -> pd.DataFrame:
    rows = []
    for sub in submissions:
        if sub.status != "scored" or sub.meta is None or sub.scores is None:
            continue
        row: dict[str, Any] = {k: sub.meta[k] for k in ENTRY_KEYS if k != "team"}
        row.update(
            team=sub.team,
            seed=int(sub.meta["seed"]),
            created_at=sub.created_at,
            task=sub.scores["task"],
            param_count=float(sub.meta["param_count"]),
            train_seconds=float(sub.meta["train_seconds"]),
            scores=sub.scores,
        )
        for metric in METRICS:
            value = sub.scores.get(metric)
            row[metric] = np.nan if value is None else float(value)
        row["entry_id"] = entry_id(row)
        rows.append(row)
    columns = [*ENTRY_KEYS, "seed", "created_at", "task", "param_count", "train_seconds"]
    frame = pd.DataFrame(rows, columns=[*columns, "scores", *METRICS, "entry_id"])
    frame = frame.sort_values(["created_at"], kind="stable")
    return frame.drop_duplicates(["entry_id", "seed"], keep="last").reset_index(drop=True)


def _entry(first: pd.Series, stats: pd.Series, seeds: pd.DataFrame) -> dict[str, Any]:
    task = str(first["task"])
    names = SINGLE_LABEL_METRICS if task == "single-label" else MULTI_LABEL_METRICS
    return {
        "entry_id": first["entry_id"],
        **{k: first[k] for k in ENTRY_KEYS},
        "task": task,
        "primary_metric": PRIMARY_METRIC[task],
        "n_seeds": int(stats["n_seeds"]),
        "seeds": sorted(int(s) for s in seeds["seed"]),
        "metrics": {
            m: {
                "mean": _none_if_nan(stats[f"{m}_mean"]),
                "std": _none_if_nan(stats[f"{m}_std"]),
            }
            for m in names
        },
        "param_count": _none_if_nan(round(float(stats["param_count_mean"]))),
        "train_seconds": _none_if_nan(float(stats["train_seconds_mean"])),
        "last_submitted": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(seeds["created_at"].max()))
        ),
    }


def build_board(
    submissions: Iterable[StoredSubmission], reference: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """Build the leaderboard from stored submissions.

    Args:
        submissions: Stored submissions (only scored ones count).
        reference: Reference rows (see :func:`~msrgb_bench.leaderboard.reference.reported_rows`).

    Returns:
        ``{"measured": [entries, ranked per group], "reported_in_paper": [...], ...}``.
    """
    frame = _per_seed_frame(submissions)
    measured: list[dict[str, Any]] = []
    if not frame.empty:
        stats = aggregate_seeds(frame, ["entry_id"], [*METRICS, "param_count", "train_seconds"])
        stats = stats.set_index("entry_id")
        for eid, seeds in frame.groupby("entry_id", sort=False):
            measured.append(_entry(seeds.iloc[-1], stats.loc[eid], seeds))
    measured.sort(key=_rank_key)
    for group in group_entries(measured):
        for rank, entry in enumerate(group, start=1):
            entry["rank"] = rank
    return {
        "measured": measured,
        "reported_in_paper": list(reference),
        "reference_label": REPORTED_LABEL,
        "reference_source": SOURCE,
        "reference_missing": list(MISSING),
    }


def _rank_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    primary = entry["metrics"][entry["primary_metric"]]["mean"]
    return (
        *(str(entry[k]) for k in GROUP_KEYS),
        primary is None,
        -(primary or 0.0),
        entry["method"],
        entry["team"],
    )


def group_entries(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split ranked entries into their groups (dataset, split, modality, pair), in order."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(tuple(str(entry[k]) for k in GROUP_KEYS), []).append(entry)
    return list(groups.values())


def group_title(entry: dict[str, Any]) -> str:
    """Return the heading of an entry's group, e.g. ``s2s-eu: resnet34 -> resnet34 (test, rgb)``."""
    return (
        f"{entry['dataset']}: {entry['teacher_arch']} -> {entry['student_arch']} "
        f"({entry['split']}, {entry['modality']})"
    )


def entry_detail(submissions: Iterable[StoredSubmission], eid: str) -> dict[str, Any] | None:
    """Return one entry with per-class scores (mean over seeds) and the summed confusion matrix.

    Returns:
        The entry, or ``None`` if there is no such entry.
    """
    frame = _per_seed_frame(submissions)
    seeds = frame[frame["entry_id"] == eid]
    if seeds.empty:
        return None
    board = build_board(submissions)
    entry = next(e for e in board["measured"] if e["entry_id"] == eid)
    scores = list(seeds["scores"])
    classes = scores[-1]["classes"]
    per_class = []
    for i, name in enumerate(classes):
        row: dict[str, Any] = {"class": name}
        for key in ("precision", "recall", "f1", "ap"):
            values = [s["per_class"][i].get(key) for s in scores if key in s["per_class"][i]]
            if values:
                numbers = [v for v in values if v is not None]
                row[key] = float(np.mean(numbers)) if numbers else None
        row["support"] = int(scores[-1]["per_class"][i]["support"])
        per_class.append(row)
    matrix = np.sum([np.asarray(s["confusion_matrix"]) for s in scores], axis=0)
    per_seed = [
        {
            "seed": int(r["seed"]),
            "value": _none_if_nan(r[entry["primary_metric"]]),
            "submitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["created_at"])),
        }
        for _, r in seeds.sort_values("seed").iterrows()
    ]
    return {
        **entry,
        "classes": list(classes),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "per_seed": per_seed,
    }


# --- text formats -----------------------------------------------------------------------------


def _fmt_metric(stat: dict[str, Any]) -> str:
    mean, std = stat["mean"], stat["std"]
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def _fmt_params(count: Any) -> str:
    return "-" if count is None else f"{count / 1e6:.2f} M"


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, rows)])


def flat_rows(board: dict[str, Any]) -> pd.DataFrame:
    """Return the measured entries as one flat table (one row per entry)."""
    rows = []
    for entry in board["measured"]:
        row = {k: entry[k] for k in ("rank", *ENTRY_KEYS, "task", "n_seeds")}
        for metric, stat in entry["metrics"].items():
            row[f"{metric}_mean"] = stat["mean"]
            row[f"{metric}_std"] = stat["std"]
        row.update(param_count=entry["param_count"], train_seconds=entry["train_seconds"])
        row["entry_id"] = entry["entry_id"]
        rows.append(row)
    return pd.DataFrame(rows)


def format_board(board: dict[str, Any], fmt: str) -> str:
    """Render a board as ``markdown``, ``csv`` (measured rows only) or ``json``.

    Raises:
        ValueError: If ``fmt`` is unknown.
    """
    if fmt == "json":
        return json.dumps(board, indent=2, sort_keys=True) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        flat_rows(board).to_csv(buffer, index=False)
        return buffer.getvalue()
    if fmt != "markdown":
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    parts: list[str] = []
    for group in group_entries(board["measured"]):
        names = list(group[0]["metrics"])
        headers = ["#", "method", "team", "preset", "ckpt", "seeds"]
        headers += [METRIC_TITLES[m] for m in names] + ["params", "train s"]
        rows = [
            [
                str(e["rank"]),
                e["method"],
                e["team"],
                e["preset"],
                e["checkpoint_rule"],
                str(e["n_seeds"]),
                *(_fmt_metric(e["metrics"][m]) for m in names),
                _fmt_params(e["param_count"]),
                "-" if e["train_seconds"] is None else f"{e['train_seconds']:.0f}",
            ]
            for e in group
        ]
        parts.append(f"### {group_title(group[0])}\n\n{_markdown_table(headers, rows)}")
    if not parts:
        parts.append("No scored submissions yet.")
    reference = board.get("reported_in_paper") or []
    if reference:
        headers = ["dataset (paper)", "teacher", "student", "method", "OA", "note"]
        rows = [
            [
                f"{r['dataset']} ({r['paper_dataset']})",
                r["teacher_arch"],
                r["student_arch"],
                r["method"],
                f"{100 * r['value']:.1f}",
                r["note"],
            ]
            for r in reference
        ]
        parts.append(
            f"### {board['reference_label'].capitalize()} (not measured here)\n\n"
            f"{_markdown_table(headers, rows)}\n\nSource: {board['reference_source']}. "
            "Not recoverable: " + "; ".join(board["reference_missing"]) + "."
        )
    return "\n\n".join(parts) + "\n"


def format_scores(scores: dict[str, Any]) -> str:
    """Render one submission's scores (``Scores.to_dict()``) as a short text report."""
    names = SINGLE_LABEL_METRICS if scores["task"] == "single-label" else MULTI_LABEL_METRICS
    boot = scores.get("bootstrap", {})
    lines = [
        f"{scores['task']}, {scores['n_samples']} samples"
        + (
            f", {100 * boot['confidence']:.0f}% bootstrap intervals "
            f"({boot['replicates']} replicates, seed {boot['seed']})"
            if boot.get("replicates")
            else ""
        )
    ]
    for name in names:
        value, interval = scores[name], scores["intervals"].get(name)
        text = "-" if value is None else f"{100 * value:6.2f} %"
        if interval:
            text += f"  [{100 * interval[0]:.2f}, {100 * interval[1]:.2f}]"
        lines.append(f"{METRIC_TITLES[name]:<10} {text}")
    headers = ["class", "precision", "recall", "F1", "support"]
    rows = [
        [
            row["class"],
            *(
                "-" if row[k] is None else f"{100 * row[k]:.2f}"
                for k in ("precision", "recall", "f1")
            ),
            str(row["support"]),
        ]
        for row in scores["per_class"]
    ]
    lines += ["", _markdown_table(headers, rows)]
    return "\n".join(lines) + "\n"
