"""Golden values for every metric, worked out by hand in the comments, and the bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from msrgb_bench.leaderboard.metrics import (
    Scores,
    aggregate_seeds,
    score_multilabel,
    score_single_label,
)

ABC = ("a", "b", "c")


def test_single_label_golden() -> None:
    # true 0 0 0 1 1 2 / pred 0 0 1 1 2 2; confusion matrix (rows true):
    #   [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # OA = 4/6. recalls 2/3, 1/2, 1 -> AA = 13/18. precisions 1, 1/2, 1/2.
    # F1: 2*1*(2/3)/(5/3) = 4/5; 1/2; 2*(1/2)*1/(3/2) = 2/3 -> macro = (4/5 + 1/2 + 2/3)/3 = 59/90.
    # kappa: po = 2/3; pe = (3*2 + 2*2 + 1*2)/36 = 1/3 -> (2/3 - 1/3)/(2/3) = 1/2.
    s = score_single_label(
        np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 2, 2]), ABC, n_boot=0
    )
    assert s.metrics["oa"] == pytest.approx(4 / 6)
    assert s.metrics["aa"] == pytest.approx(13 / 18)
    assert s.metrics["kappa"] == pytest.approx(0.5)
    assert s.metrics["macro_f1"] == pytest.approx(59 / 90)
    assert s.confusion_matrix == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert [r["precision"] for r in s.per_class] == pytest.approx([1, 0.5, 0.5])
    assert [r["recall"] for r in s.per_class] == pytest.approx([2 / 3, 0.5, 1])
    assert [r["f1"] for r in s.per_class] == pytest.approx([0.8, 0.5, 2 / 3])
    assert [r["support"] for r in s.per_class] == [3, 2, 1]
    assert [r["class"] for r in s.per_class] == list(ABC)
    assert s.intervals == dict.fromkeys(("oa", "aa", "kappa", "macro_f1"))


def test_absent_classes_follow_the_declared_rules() -> None:
    # 4 classes; class 2 never occurs; class 3 is predicted once but never true.
    # true 0 0 1 1 / pred 0 3 1 1. OA = 3/4. AA over classes present in the labels:
    # recall 1/2 (class 0), 1 (class 1) -> 3/4. macro-F1 over labels or predictions {0, 1, 3}:
    # F1 = 2/3, 1, 0 -> 5/9. kappa: po = 3/4, pe = (2*1 + 2*2)/16 = 3/8 -> (3/8)/(5/8) = 3/5.
    s = score_single_label(np.array([0, 0, 1, 1]), np.array([0, 3, 1, 1]), "abcd", n_boot=0)
    assert s.metrics["oa"] == pytest.approx(0.75)
    assert s.metrics["aa"] == pytest.approx(0.75)
    assert s.metrics["macro_f1"] == pytest.approx(5 / 9)
    assert s.metrics["kappa"] == pytest.approx(0.6)
    assert s.per_class[2] == {"class": "c", "precision": 0, "recall": 0, "f1": 0, "support": 0}
    assert s.confusion_matrix[0] == [1, 0, 0, 1]


def test_multilabel_golden() -> None:
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    s = np.array([[0.9, 0.6], [0.4, 0.7], [0.6, 0.8], [0.3, 0.1]])
    p = (s >= 0.5).astype(int)  # [[1, 1], [0, 1], [1, 1], [0, 0]]
    # AP class 0: ranking .9(+) .6(-) .4(+) .3(-) -> (1/1 + 2/3)/2 = 5/6.
    # AP class 1: ranking .8(+) .7(+) .6(-) .1(-) -> 1. macro mAP = 11/12.
    # micro AP over all 8 pairs: .9+ .8+ .7+ {.6- .6-} .4+ .3- .1-: recall steps of 1/4 at
    # precisions 1, 1, 1, then 4/6 -> 3/4 + 1/6 = 11/12.
    # F1: class 0 TP 1 FP 1 FN 1 -> 1/2; class 1 TP 2 FP 1 FN 0 -> 4/5; macro 13/20.
    # micro: TP 3 FP 2 FN 1 -> 6/9.
    out = score_multilabel(y, p, s, ("x", "y"), threshold=0.5, n_boot=0)
    assert out.task == "multi-label"
    assert out.metrics["macro_map"] == pytest.approx(11 / 12)
    assert out.metrics["micro_map"] == pytest.approx(11 / 12)
    assert out.metrics["macro_f1"] == pytest.approx(13 / 20)
    assert out.metrics["micro_f1"] == pytest.approx(2 / 3)
    assert [r["ap"] for r in out.per_class] == pytest.approx([5 / 6, 1.0])
    assert [r["precision"] for r in out.per_class] == pytest.approx([0.5, 2 / 3])
    assert [r["recall"] for r in out.per_class] == pytest.approx([0.5, 1.0])
    assert [r["support"] for r in out.per_class] == [2, 2]
    # per class [[TN, FP], [FN, TP]]
    assert out.confusion_matrix == [[[1, 1], [1, 1]], [[1, 1], [0, 2]]]
    assert out.threshold == 0.5


def test_multilabel_class_without_positives_is_left_out_of_macro_means() -> None:
    # Class z has no positive and is never predicted: AP and F1 undefined, not counted as 0.
    y = np.array([[1, 0], [0, 0]])
    s = np.array([[0.9, 0.1], [0.2, 0.2]])
    out = score_multilabel(y, (s >= 0.5).astype(int), s, ("x", "z"), threshold=0.5, n_boot=0)
    assert out.metrics["macro_map"] == pytest.approx(1.0)
    assert out.metrics["macro_f1"] == pytest.approx(1.0)
    assert out.per_class[1]["ap"] is None and out.per_class[1]["f1"] is None


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    p = np.where(rng.random(300) < 0.7, y, rng.integers(0, 3, 300))
    one = score_single_label(y, p, ABC, n_boot=60, seed=5)
    two = score_single_label(y, p, ABC, n_boot=60, seed=5)
    other = score_single_label(y, p, ABC, n_boot=60, seed=6)
    assert one.intervals == two.intervals
    assert one.intervals != other.intervals
    for name, (low, high) in one.intervals.items():  # type: ignore[misc]
        assert low < one.metrics[name] < high, name
    assert one.bootstrap == {"replicates": 60, "seed": 5, "confidence": 0.95}


def test_bootstrap_over_cells_matches_resampling_rows() -> None:
    # The cell-count bootstrap must have the distribution of the plain row bootstrap:
    # compare the OA interval with one from resampled rows scored by scikit-learn.
    rng = np.random.default_rng(2)
    n = 400
    y = rng.integers(0, 3, n)
    p = np.where(rng.random(n) < 0.75, y, rng.integers(0, 3, n))
    cells = score_single_label(y, p, ABC, n_boot=400, seed=0).intervals["oa"]
    rows = [accuracy_score(y[i], p[i]) for i in (rng.integers(0, n, n) for _ in range(400))]
    low, high = np.quantile(rows, [0.025, 0.975])
    assert cells is not None
    assert cells[0] == pytest.approx(low, abs=0.015)
    assert cells[1] == pytest.approx(high, abs=0.015)
    # and the width is what the normal approximation says: 2 * 1.96 * sqrt(oa (1 - oa) / n)
    oa = accuracy_score(y, p)
    assert cells[1] - cells[0] == pytest.approx(2 * 1.96 * math.sqrt(oa * (1 - oa) / n), rel=0.15)


def test_perfect_predictions_have_a_degenerate_interval() -> None:
    y = np.array([0, 1, 2, 1])
    s = score_single_label(y, y, ABC, n_boot=50)
    assert s.metrics == {"oa": 1.0, "aa": 1.0, "kappa": 1.0, "macro_f1": 1.0}
    assert s.intervals["oa"] == (1.0, 1.0)


def test_multilabel_bootstrap_is_seeded() -> None:
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 1]])
    s = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.8], [0.3, 0.1], [0.7, 0.6], [0.2, 0.9]])
    p = (s >= 0.5).astype(int)
    one = score_multilabel(y, p, s, ("x", "y"), threshold=0.5, n_boot=30, seed=3)
    two = score_multilabel(y, p, s, ("x", "y"), threshold=0.5, n_boot=30, seed=3)
    assert one.intervals == two.intervals
    low, high = one.intervals["micro_f1"]  # type: ignore[misc]
    assert low <= one.metrics["micro_f1"] <= high  # type: ignore[operator]


def test_scores_round_trip_through_dict() -> None:
    s = score_single_label(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), ABC, n_boot=10)
    data = s.to_dict()
    assert data["oa"] == 0.75 and data["primary_metric"] == "oa"
    assert Scores.from_dict(data) == s


def test_seed_aggregation_golden() -> None:
    # seeds of entry A: 0.9, 0.8, 0.85 -> mean 0.85, sample std sqrt((0.05^2 + 0.05^2 + 0)/2) = 0.05
    # entry B has a single seed: its standard deviation is undefined (NaN).
    frame = pd.DataFrame(
        {
            "entry": ["A", "A", "A", "B"],
            "seed": [0, 1, 2, 0],
            "oa": [0.9, 0.8, 0.85, 0.7],
        }
    )
    out = aggregate_seeds(frame, ["entry"], ["oa"]).set_index("entry")
    assert out.loc["A", "oa_mean"] == pytest.approx(0.85)
    assert out.loc["A", "oa_std"] == pytest.approx(0.05)
    assert out.loc["A", "n_seeds"] == 3
    assert math.isnan(out.loc["B", "oa_std"]) and out.loc["B", "n_seeds"] == 1
