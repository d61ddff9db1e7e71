"""Figures of a results folder, drawn with Matplotlib's Agg canvas (no display needed).

- ``plots/oa.png``: one panel per pair; per method a bar at the mean OA over seeds, an error bar
  spanning the mean 95 % bootstrap interval of OA, and one dot per seed.
- ``plots/confusion_<T-S>.png``: per pair, the confusion matrix of the method with the best mean
  OA, summed over its seeds and normalised per true class (rows sum to 100 %).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from msrgb_bench.atomic import atomic_path
from msrgb_bench.benchmark.plan import scores_path

PLOTS_DIR = "plots"


def _save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


def plot_oa(long: pd.DataFrame, summary: pd.DataFrame, path: Path, title: str) -> Path:
    """Draw OA per method, one panel per pair (see the module docstring)."""
    pairs = list(dict.fromkeys(summary["pair"]))
    width = max(4.0, 0.7 * summary.groupby("pair").size().max() + 1.5)
    figure = Figure(figsize=(width * len(pairs), 4.2))
    axes = figure.subplots(1, len(pairs), sharey=True, squeeze=False)[0]
    for ax, pair in zip(axes, pairs, strict=True):
        entries = summary[summary["pair"] == pair]
        x = np.arange(len(entries))
        mean = 100 * entries["oa_mean"].to_numpy(dtype=float)
        low = 100 * entries["oa_low_mean"].to_numpy(dtype=float)
        high = 100 * entries["oa_high_mean"].to_numpy(dtype=float)
        yerr = np.clip(np.vstack([mean - low, high - mean]), 0, None)
        ax.bar(x, mean, color="#8fb3d9", edgecolor="#2b5d8a", label="mean OA")
        ax.errorbar(x, mean, yerr=yerr, fmt="none", ecolor="black", capsize=4, label="95% CI")
        for i, method in enumerate(entries["method"]):
            seeds = long[(long["pair"] == pair) & (long["method"] == method)]
            oa = 100 * seeds["oa"].to_numpy(dtype=float)
            label = "one seed" if i == 0 else None
            ax.scatter(np.full(len(oa), i), oa, s=12, color="#c0392b", zorder=3, label=label)
        ax.set_xticks(x, list(entries["method"]), rotation=30, ha="right")
        teacher, student = entries.iloc[0][["teacher_arch", "student_arch"]]
        ax.set_title(f"{pair}: {teacher} -> {student}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("test OA (%)")
    axes[0].legend(loc="best", fontsize=8)
    figure.suptitle(title, fontsize=9)
    return _save(figure, path)


def plot_confusion(matrix: np.ndarray, classes: list[str], path: Path, title: str) -> Path:
    """Draw a confusion matrix (rows: true class) normalised per row, in percent."""
    totals = matrix.sum(axis=1, keepdims=True)
    percent = np.divide(100.0 * matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    size = 1.2 + 0.45 * len(classes)
    figure = Figure(figsize=(size + 1.5, size))
    ax = figure.subplots()
    image = ax.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    figure.colorbar(image, ax=ax, label="% of the true class")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(ticks, classes, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for i, j in zip(*np.nonzero(matrix), strict=True):
        color = "white" if percent[i, j] > 60 else "black"
        ax.text(j, i, f"{percent[i, j]:.0f}", ha="center", va="center", fontsize=6, color=color)
    ax.set_title(title, fontsize=9)
    return _save(figure, path)


def draw_plots(root: Path, long: pd.DataFrame, summary: pd.DataFrame, caption: str) -> list[Path]:
    """Draw every figure of a results folder into ``root/plots``; return the paths."""
    if summary.empty:
        return []
    folder = root / PLOTS_DIR
    written = [plot_oa(long, summary, folder / "oa.png", caption)]
    for pair, entries in summary.groupby("pair", sort=False):
        best = entries.loc[entries["oa_mean"].astype(float).idxmax()]
        rows = long[(long["pair"] == pair) & (long["method"] == best["method"])]
        matrix: np.ndarray | None = None
        classes: list[str] = []
        for predictions in rows["predictions"]:
            scores = json.loads(scores_path(root / predictions).read_text(encoding="utf-8"))
            counts = np.asarray(scores["confusion_matrix"], dtype=np.int64)
            matrix = counts if matrix is None else matrix + counts
            classes = list(scores["classes"])
        assert matrix is not None
        title = (
            f"{pair} ({best['teacher_arch']} -> {best['student_arch']}), best method "
            f"{best['method']}: OA {100 * float(best['oa_mean']):.2f} %, "
            f"{len(rows)} seed(s) summed"
        )
        name = f"confusion_{str(pair).replace('/', '-')}.png"
        written.append(plot_confusion(matrix, classes, folder / name, title))
    return written
