"""The leaderboard's HTML pages (Jinja2 templates) and the confusion-matrix plot (matplotlib).

Templates live in ``templates/`` and are rendered with autoescaping on, so team and method
names are always shown as text. The page is self-contained: a few lines of plain JavaScript
sort a table when a header is clicked; nothing is fetched from elsewhere.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from msrgb_bench.leaderboard.board import METRIC_TITLES, group_entries, group_title


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("msrgb_bench.leaderboard", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    env.filters["pct"] = _pct
    env.filters["mega"] = lambda n: "-" if n is None else f"{n / 1e6:.2f} M"
    return env


def _pct(stat: dict[str, Any]) -> str:
    mean, std = stat.get("mean"), stat.get("std")
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def render_index(board: dict[str, Any]) -> str:
    """Render the leaderboard page: one sortable table per group, then the paper's numbers."""
    groups = [
        {"title": group_title(g[0]), "metrics": list(g[0]["metrics"]), "entries": g}
        for g in group_entries(board["measured"])
    ]
    return (
        _environment()
        .get_template("index.html")
        .render(
            groups=groups,
            titles=METRIC_TITLES,
            reference=board.get("reported_in_paper") or [],
            reference_label=board.get("reference_label", ""),
            reference_source=board.get("reference_source", ""),
            reference_missing=board.get("reference_missing", []),
        )
    )


def render_entry(detail: dict[str, Any]) -> str:
    """Render a method's page: scores, per-class table, confusion matrix and seeds."""
    has_ap = any("ap" in row for row in detail["per_class"])
    return (
        _environment()
        .get_template("entry.html")
        .render(e=detail, titles=METRIC_TITLES, has_ap=has_ap)
    )


def render_not_found(message: str) -> str:
    """Render a "not found" page."""
    return _environment().get_template("not_found.html").render(message=message)


def confusion_png(matrix: Sequence[Any], classes: Sequence[str]) -> bytes:
    """Plot a confusion matrix as PNG bytes.

    A K x K matrix is drawn row-normalised (colour = share of the true class) with the counts
    written in the cells; a multi-label K x 2 x 2 stack is drawn as one row per class with the
    columns TN, FP, FN, TP.

    Args:
        matrix: K x K counts (rows true, columns predicted) or K x 2 x 2 counts.
        classes: Class names in index order.

    Returns:
        The PNG file's bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.int64)
    k = len(classes)
    if counts.ndim == 3:
        counts = counts.reshape(k, 4)
        columns = ["TN", "FP", "FN", "TP"]
        xlabel = "outcome"
    else:
        columns = list(classes)
        xlabel = "predicted class"
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    width = max(4.0, 0.5 * len(columns) + 2.5)
    height = max(3.0, 0.5 * k + 1.5)
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(k), list(classes), fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("true class")
    if counts.size <= 400:
        for (i, j), value in np.ndenumerate(counts):
            colour = "white" if shares[i, j] > 0.6 else "black"
            axes.text(j, i, str(value), ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true class")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
