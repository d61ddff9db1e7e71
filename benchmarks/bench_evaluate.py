"""Time to score a million predictions, against a bare scikit-learn accuracy + confusion matrix.

Prints the seconds of:

* ``bare``: ``sklearn.metrics.accuracy_score`` + ``confusion_matrix`` on the two label arrays,
  the least any scorer of these predictions has to do;
* ``score``: :func:`score_single_label` without intervals (OA, AA, kappa, macro-F1, per-class
  precision/recall/F1, confusion matrix);
* ``score + bootstrap``: the same with ``--bootstrap`` replicates (default 1000);
* ``end to end``: parse the submission CSV from bytes, validate it against the labels (every id
  matched, every value checked, rows aligned) and score it with the bootstrap, as the server
  does;

and the ratio of each to ``bare``. The best of ``--repeat`` runs counts.

Usage: python benchmarks/bench_evaluate.py [--n 1000000] [--classes 10] [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix

from msrgb_bench.leaderboard.metrics import score, score_single_label
from msrgb_bench.leaderboard.schema import SubmissionMeta
from msrgb_bench.leaderboard.submission import parse_predictions, validate_submission
from msrgb_bench.leaderboard.truth import GroundTruth


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    k, n = args.classes, args.n
    classes = tuple(f"class{i}" for i in range(k))
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, rng.integers(0, k, n))
    labels = np.arange(k)

    bare = best_of(
        args.repeat,
        lambda: (accuracy_score(y_true, y_pred), confusion_matrix(y_true, y_pred, labels=labels)),
    )
    plain = best_of(args.repeat, lambda: score_single_label(y_true, y_pred, classes, n_boot=0))
    boot = best_of(1, lambda: score_single_label(y_true, y_pred, classes, n_boot=args.bootstrap))

    ids = np.array([f"rgb-test-{i:07d}" for i in range(n)], dtype=object)
    truth = GroundTruth(
        dataset="bench",
        dataset_hash="0" * 64,
        classes=classes,
        multilabel=False,
        samples=pd.DataFrame(
            {
                "sample_id": ids,
                "modality": "rgb",
                "split": "test",
                "label": y_true,
                "labels": [[int(v)] for v in y_true],
            }
        ),
    )
    meta = SubmissionMeta(
        dataset="bench", dataset_hash="0" * 64, split="test", method="kd",
        teacher_arch="resnet34", student_arch="resnet34", preset="paper", seed=0,
        config_hash="-", code_version="-", checkpoint_rule="best-val", param_count=0,
        train_seconds=0.0,
    )  # fmt: skip
    order = rng.permutation(n)
    frame = pd.DataFrame({"sample_id": ids[order], "pred": y_pred[order]})
    data = frame.to_csv(index=False).encode()

    def end_to_end() -> None:
        parsed = parse_predictions(data, "preds.csv")
        score(validate_submission(parsed, meta, truth), n_boot=args.bootstrap)

    full = best_of(1, end_to_end)

    print(f"{n:,} predictions, {k} classes, CSV {len(data) / 1e6:.1f} MB")
    print(f"{'bare accuracy_score + confusion_matrix':<44} {bare:7.3f} s   1.0x")
    for name, seconds in (
        ("score (no intervals)", plain),
        (f"score + bootstrap ({args.bootstrap} replicates)", boot),
        ("end to end: parse + validate + score + boot", full),
    ):
        print(f"{name:<44} {seconds:7.3f} s  {seconds / bare:5.1f}x")


if __name__ == "__main__":
    main()
