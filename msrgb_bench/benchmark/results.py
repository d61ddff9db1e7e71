"""The results tables: the long table (one row per finished cell) and the summaries over seeds.

``results.csv`` has one row per dataset x pair x method x seed (:data:`LONG_COLUMNS`); a cell
is finished exactly when its row is there. Each row is added by rewriting the whole file
through an atomic rename, so a killed run never leaves a half-written row.

The summary has one row per dataset x pair x method: for each metric the mean and the sample
standard deviation (ddof 1) over seeds (the leaderboard's
:func:`~msrgb_bench.leaderboard.metrics.aggregate_seeds`), and ``oa_low_mean`` /
``oa_high_mean``: the mean over seeds of each run's 95 % percentile-bootstrap interval of OA.
That interval is the test-sampling uncertainty of one run of the entry (the test images
resampled, the trained model fixed); the standard deviation is the spread over training seeds.
Metrics are fractions in the CSV files and percentages (kappa: x 100) in Markdown and HTML.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from msrgb_bench.atomic import write_text_atomic
from msrgb_bench.errors import ResultsFolderError
from msrgb_bench.leaderboard.metrics import SINGLE_LABEL_METRICS, aggregate_seeds

RESULTS_CSV = "results.csv"
SUMMARY_STEM = "summary"
KEY_COLUMNS = ("dataset", "pair", "method", "seed")
ENTRY_COLUMNS = ("dataset", "pair", "teacher_arch", "student_arch", "method")
INTERVAL_COLUMNS = ("oa_low", "oa_high")
LONG_COLUMNS = (
    "dataset",
    "dataset_hash",
    "protocol",
    "pair",
    "teacher_arch",
    "student_arch",
    "method",
    "seed",
    *SINGLE_LABEL_METRICS,
    *INTERVAL_COLUMNS,
    "n_test",
    "best_epoch",
    "train_seconds",
    "config_hash",
    "teacher_config_hash",
    "run",
    "predictions",
    "finished",
)
METRIC_TITLES = {"oa": "OA %", "aa": "AA %", "kappa": "kappa x100", "macro_f1": "macro-F1 %"}


def read_results(root: Path) -> pd.DataFrame:
    """Return ``root/results.csv`` (an empty table with the columns if there is none).

    Raises:
        ResultsFolderError: If the file is unreadable, lacks columns or repeats a cell.
    """
    path = root / RESULTS_CSV
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in LONG_COLUMNS})
    try:
        # Only empty cells are missing values, so no method name is ever read as NaN.
        frame = pd.read_csv(
            path, dtype={"seed": "int64", "pair": str, "method": str}, keep_default_na=False,
            na_values=[""],
        )  # fmt: skip
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ResultsFolderError(path, f"unreadable CSV ({exc})") from exc
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise ResultsFolderError(path, f"missing column(s) {', '.join(missing)}")
    repeated = frame[frame.duplicated(list(KEY_COLUMNS))]
    if len(repeated):
        row = repeated.iloc[0]
        raise ResultsFolderError(
            path, f"repeats the cell {row['pair']} {row['method']} seed {row['seed']}"
        )
    return frame.loc[:, list(LONG_COLUMNS)]


def finished_keys(frame: pd.DataFrame) -> set[tuple[str, str, int]]:
    """Return the ``(pair, method, seed)`` of every row."""
    return {(str(p), str(m), int(s)) for p, m, s in frame[["pair", "method", "seed"]].to_numpy()}


def append_row(root: Path, row: dict[str, Any]) -> pd.DataFrame:
    """Add one finished cell to ``root/results.csv`` (whole-file atomic rewrite); return it."""
    missing = [c for c in LONG_COLUMNS if c not in row]
    if missing:
        raise ValueError(f"row lacks column(s) {', '.join(missing)}")
    frame = read_results(root)
    added = pd.DataFrame([{c: row[c] for c in LONG_COLUMNS}])
    frame = added if frame.empty else pd.concat([frame, added], ignore_index=True)
    write_text_atomic(root / RESULTS_CSV, frame.to_csv(index=False))
    return frame


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Aggregate the long table over seeds (see the module docstring for the columns).

    Entries keep the order in which they first appear in the long table.
    """
    metrics = [*SINGLE_LABEL_METRICS, *INTERVAL_COLUMNS]
    values = frame.astype({m: "float64" for m in metrics})
    stats = aggregate_seeds(values, ENTRY_COLUMNS, metrics)
    first = values.drop_duplicates(list(ENTRY_COLUMNS)).loc[:, list(ENTRY_COLUMNS)]
    ordered = first.merge(stats, on=list(ENTRY_COLUMNS), how="left")
    return ordered.drop(columns=["oa_low_std", "oa_high_std"]).reset_index(drop=True)


def _percent(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{100 * value:.2f}"


def _mean_std(mean: float, std: float) -> str:
    text = _percent(mean)
    return text if not np.isfinite(std) else f"{text} ± {100 * std:.2f}"


def display_table(summary: pd.DataFrame, with_dataset: bool = False) -> pd.DataFrame:
    """Return the summary with formatted text cells, as shown in Markdown and HTML."""
    rows = []
    for entry in summary.to_dict("records"):
        row = {"dataset": entry["dataset"]} if with_dataset else {}
        row.update(
            pair=entry["pair"],
            teacher=entry["teacher_arch"],
            student=entry["student_arch"],
            method=entry["method"],
            seeds=str(entry["n_seeds"]),
        )
        for metric in SINGLE_LABEL_METRICS:
            row[METRIC_TITLES[metric]] = _mean_std(entry[f"{metric}_mean"], entry[f"{metric}_std"])
            if metric == "oa":
                low, high = entry["oa_low_mean"], entry["oa_high_mean"]
                row["OA 95% CI"] = f"[{_percent(low)}, {_percent(high)}]"
        rows.append(row)
    return pd.DataFrame(rows)


def oa_by_method_and_pair(summary: pd.DataFrame) -> pd.DataFrame:
    """Return one dataset's test OA (mean ± std over seeds) as a method x pair text table.

    Methods and pairs keep the order in which they first appear.
    """
    cells = summary.assign(
        oa=[_mean_std(m, s) for m, s in zip(summary["oa_mean"], summary["oa_std"], strict=True)]
    )
    table = cells.pivot(index="method", columns="pair", values="oa")
    table = table.reindex(index=cells["method"].unique(), columns=cells["pair"].unique())
    return table.fillna("-").reset_index()


def _markdown_table(table: pd.DataFrame) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    body = [line([str(c) for c in row]) for row in table.itertuples(index=False)]
    return "\n".join(
        [line([str(c) for c in table.columns]), line(["---"] * len(table.columns)), *body]
    )


def summary_markdown(summary: pd.DataFrame, caption: str) -> str:
    """Return the caption line, a blank line and the Markdown table, one per dataset."""
    parts = [caption]
    for dataset, group in summary.groupby("dataset", sort=True):
        compact = _markdown_table(oa_by_method_and_pair(group))
        parts.append(f"### {dataset}: OA % by method and pair\n\n{compact}")
        parts.append(f"### {dataset}\n\n{_markdown_table(display_table(group))}")
    if summary.empty:
        parts.append("No finished cells yet.")
    return "\n\n".join(parts) + "\n"


def summary_html(summary: pd.DataFrame, caption: str) -> str:
    """Return a stand-alone HTML page with the captioned summary table."""
    table = display_table(summary, with_dataset=True)
    styled = table.style.hide(axis="index").set_caption(caption)
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>msrgb benchmark</title>"
        "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "caption{caption-side:top;text-align:left;margin-bottom:8px}</style></head><body>\n"
        f"{styled.to_html()}\n</body></html>\n"
    )


def write_summaries(root: Path, summary: pd.DataFrame, caption: str) -> list[Path]:
    """Write ``summary.md``, ``summary.csv`` and ``summary.html`` atomically; return the paths."""
    buffer = io.StringIO()
    summary.to_csv(buffer, index=False)
    outputs = {
        root / f"{SUMMARY_STEM}.md": summary_markdown(summary, caption),
        root / f"{SUMMARY_STEM}.csv": buffer.getvalue(),
        root / f"{SUMMARY_STEM}.html": summary_html(summary, caption),
    }
    for path, text in outputs.items():
        write_text_atomic(path, text)
    return list(outputs)
