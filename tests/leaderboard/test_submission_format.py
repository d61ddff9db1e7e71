"""The submission format: metadata, writing, reading and validation against the labels."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from leaderboard_fixtures import CLASSES, make_dataset, make_meta, rgb_labels, write_preds

from msrgb_bench.data.manifest import write_info
from msrgb_bench.errors import ManifestError, MSRGBError
from msrgb_bench.leaderboard.schema import SubmissionMeta, sidecar_path
from msrgb_bench.leaderboard.submission import (
    SubmissionError,
    parse_predictions,
    read_submission,
    validate_submission,
    write_submission,
)
from msrgb_bench.leaderboard.truth import GroundTruth


@pytest.fixture
def dataset(tmp_path: Path):
    root = tmp_path / "ds"
    info = make_dataset(root)
    return root, info


def _probs(preds: np.ndarray, k: int = 3) -> np.ndarray:
    probs = np.full((len(preds), k), 0.1)
    probs[np.arange(len(preds)), preds] = 1 - 0.1 * (k - 1)
    return probs


# --- metadata ---------------------------------------------------------------------------------


def test_meta_is_an_mrsgb_error_subclass_and_names_every_bad_field(dataset) -> None:
    _, info = dataset
    with pytest.raises(SubmissionError) as caught:
        make_meta(info, split="train", checkpoint_rule="best", seed=-1, dataset_hash="xyz")
    message = str(caught.value)
    assert isinstance(caught.value, MSRGBError)
    assert "split must be one of test, val, got 'train'" in message
    assert "checkpoint_rule must be one of best-val, last" in message
    assert "seed must be a non-negative integer" in message
    assert "dataset_hash must be the 64 lowercase hex digits" in message
    assert len(caught.value.problems) == 4


def test_meta_from_dict_refuses_unknown_missing_and_mistyped_keys(dataset) -> None:
    _, info = dataset
    data = make_meta(info).to_dict()
    data["colour"] = "red"
    del data["preset"]
    data["param_count"] = "lots"
    with pytest.raises(SubmissionError) as caught:
        SubmissionMeta.from_dict(data, source="x.meta.json")
    assert str(caught.value).startswith("x.meta.json: ")
    assert caught.value.problems == [
        "unknown metadata key(s): 'colour'",
        "missing metadata key(s): preset",
        "param_count must be an integer, got 'lots'",
    ]


def test_unknown_schema_version_is_refused(dataset) -> None:
    _, info = dataset
    data = make_meta(info).to_dict()
    data["schema_version"] = 99
    with pytest.raises(SubmissionError, match="unknown schema_version 99"):
        SubmissionMeta.from_dict(data)


def test_meta_round_trips_through_json(dataset) -> None:
    _, info = dataset
    meta = make_meta(info, notes="try 2", train_seconds=3)
    again = SubmissionMeta.from_dict(json.loads(json.dumps(meta.to_dict())))
    assert again == meta
    assert again.train_seconds == 3.0 and isinstance(again.train_seconds, float)


# --- write / read -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_read_round_trip(tmp_path: Path, dataset, suffix: str) -> None:
    _, info = dataset
    ids, y = rgb_labels(info)
    probs = _probs(y)
    frame = pd.DataFrame({"sample_id": ids[::-1], "pred": y[::-1]})
    for k, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = probs[::-1, k]
    meta = make_meta(info)
    path = write_submission(tmp_path / f"preds{suffix}", frame, meta)
    assert sidecar_path(path) == tmp_path / f"preds{suffix}.meta.json"
    back, meta_back = read_submission(path)
    assert meta_back == meta
    assert list(back.columns) == ["sample_id", "pred", *(f"prob_{c}" for c in CLASSES)]
    assert back["sample_id"].tolist() == ids  # sorted on write
    assert back["pred"].tolist() == y.tolist()
    np.testing.assert_allclose(back[[f"prob_{c}" for c in CLASSES]].to_numpy(), probs)


def test_write_refuses_bad_frame_and_writes_nothing(tmp_path: Path, dataset) -> None:
    _, info = dataset
    frame = pd.DataFrame(
        {
            "sample_id": ["a", "a", "b"],
            "pred": [0.0, 1.0, np.nan],
            "prob_x": [0.5, 0.2, 0.1],
            "prob_y": [0.4, 0.8, 0.9],
            "extra": 1,
        }
    )
    with pytest.raises(SubmissionError) as caught:
        write_submission(tmp_path / "out" / "p.csv", frame, make_meta(info))
    assert caught.value.problems == [
        "unexpected column(s): 'extra'",
        "1 duplicated sample_id(s), 2 rows: 'a'",
        "1 empty or non-integer pred value(s) (sample_id 'b')",
        "1 row(s) whose probabilities do not sum to one within 0.001 ('a' sums to 0.9)",
    ]
    assert not (tmp_path / "out").exists()


def test_unknown_suffix_is_refused(tmp_path: Path, dataset) -> None:
    _, info = dataset
    ids, y = rgb_labels(info)
    with pytest.raises(SubmissionError, match=r"unknown predictions format '\.txt'"):
        write_preds(tmp_path / "p.txt", ids, y, make_meta(info))


def test_sidecar_of_other_predictions_is_detected(tmp_path: Path, dataset) -> None:
    _, info = dataset
    ids, y = rgb_labels(info)
    path = write_preds(tmp_path / "p.csv", ids, y, make_meta(info))
    path.write_text(path.read_text().replace('"rgb-test-0000",0', '"rgb-test-0000",1'))
    with pytest.raises(SubmissionError, match="metadata belongs to other predictions"):
        read_submission(path)


def test_missing_sidecar_and_size_limit(tmp_path: Path, dataset) -> None:
    _, info = dataset
    ids, y = rgb_labels(info)
    path = write_preds(tmp_path / "p.csv", ids, y, make_meta(info))
    size = path.stat().st_size
    with pytest.raises(SubmissionError, match=f"file is {size} bytes, over the size limit of 10"):
        read_submission(path, max_bytes=10)
    sidecar_path(path).unlink()
    with pytest.raises(SubmissionError, match=r"no metadata sidecar p\.csv\.meta\.json"):
        read_submission(path)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("p.csv", bytes(range(256)) * 20),
        ("p.parquet", b"PAR1 this is not parquet"),
        ("p.csv", b'sample_id,pred\n"unterminated,1\nx,2,3,4\n'),
    ],
)
def test_junk_bytes_are_refused(name: str, data: bytes) -> None:
    with pytest.raises(SubmissionError, match="not a readable"):
        parse_predictions(data, name)


def test_csv_ids_stay_text(tmp_path: Path) -> None:
    frame = parse_predictions(b"sample_id,pred\n007,1\nNA,2\n,0\n", "p.csv")
    assert frame["sample_id"].tolist() == ["007", "NA", ""]
    assert frame["pred"].tolist() == [1, 2, 0]


# --- validation against the labels ------------------------------------------------------------


def test_valid_submission_aligns_with_the_labels(dataset) -> None:
    root, info = dataset
    ids, y = rgb_labels(info)
    order = np.random.default_rng(0).permutation(len(ids))
    frame = pd.DataFrame({"sample_id": np.asarray(ids)[order], "pred": y[order]})
    aligned = validate_submission(frame, make_meta(info), GroundTruth.from_dataset(root))
    assert aligned.target.sample_ids.tolist() == ids
    assert aligned.target.y.tolist() == y.tolist()
    assert aligned.y_pred.tolist() == y.tolist()
    assert aligned.proba is None


def test_missing_extra_and_duplicated_ids_are_counted_with_examples(dataset) -> None:
    root, info = dataset
    ids, _ = rgb_labels(info)
    kept = ids[4:]  # 4 missing
    extra = ["../../etc/passwd", "rgb-train-0000"]
    frame = pd.DataFrame(
        {"sample_id": [*kept, *extra, kept[0]], "pred": [0] * (len(kept) + len(extra) + 1)}
    )
    with pytest.raises(SubmissionError) as caught:
        validate_submission(frame, make_meta(info), GroundTruth.from_dataset(root), "p.csv")
    assert caught.value.problems == [
        "1 duplicated sample_id(s), 2 rows: 'rgb-test-0004'",
        "4 missing sample_id(s): 'rgb-test-0000', 'rgb-test-0001', 'rgb-test-0002', ...",
        "2 extra sample_id(s) not in the scored split: '../../etc/passwd', 'rgb-train-0000'",
    ]


def test_labels_out_of_range_and_bad_probabilities(dataset) -> None:
    root, info = dataset
    ids, y = rgb_labels(info)
    preds = y.copy()
    preds[2], preds[5] = 3, -1
    probs = _probs(y)
    probs[1] = [np.inf, 0.0, 0.0]
    frame = pd.DataFrame({"sample_id": ids, "pred": preds})
    for k, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = probs[:, k]
    with pytest.raises(SubmissionError) as caught:
        validate_submission(frame, make_meta(info), GroundTruth.from_dataset(root))
    assert caught.value.problems == [
        "2 pred value(s) out of range 0..2 (3 for 'rgb-test-0002', -1 for 'rgb-test-0005')",
        "1 row(s) with empty or non-finite probabilities (sample_id 'rgb-test-0001')",
    ]
    probs = _probs(y)
    probs[3] = [0.5, 0.4, 0.3]
    for k, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = probs[:, k]
    frame["pred"] = y
    with pytest.raises(SubmissionError, match=r"'rgb-test-0003' sums to 1\.2"):
        validate_submission(frame, make_meta(info), GroundTruth.from_dataset(root))


def test_probability_columns_must_cover_the_classes(dataset) -> None:
    root, info = dataset
    ids, y = rgb_labels(info)
    frame = pd.DataFrame({"sample_id": ids, "pred": y, "prob_forest": 1.0, "prob_lake": 0.0})
    with pytest.raises(SubmissionError) as caught:
        validate_submission(frame, make_meta(info), GroundTruth.from_dataset(root))
    assert caught.value.problems == [
        "column(s) for unknown classes: 'prob_lake'",
        "missing column(s) 'prob_river', 'prob_sea_lake' (2 in all)",
    ]


def test_dataset_hash_and_split_mismatch(dataset) -> None:
    root, info = dataset
    ids, y = rgb_labels(info)
    frame = pd.DataFrame({"sample_id": ids, "pred": y})
    truth = GroundTruth.from_dataset(root)
    with pytest.raises(SubmissionError, match="does not match the scored dataset's"):
        validate_submission(frame, make_meta(info, dataset_hash="0" * 64), truth)
    only_test = GroundTruth(
        truth.dataset,
        truth.dataset_hash,
        truth.classes,
        truth.multilabel,
        truth.samples[truth.samples["split"] == "test"],
    )
    with pytest.raises(SubmissionError, match="split 'val' of modality 'rgb' has no labels here"):
        validate_submission(frame, make_meta(info, split="val"), only_test)


def test_val_split_is_scored_locally(dataset) -> None:
    root, info = dataset
    ids, y = rgb_labels(info, split="val")
    frame = pd.DataFrame({"sample_id": ids, "pred": y})
    aligned = validate_submission(
        frame, make_meta(info, split="val"), GroundTruth.from_dataset(root)
    )
    assert aligned.target.split == "val" and aligned.y_pred.tolist() == y.tolist()


def test_tampered_manifest_is_noticed(dataset) -> None:
    root, info = dataset
    write_info(dataclasses.replace(info, content_hash="f" * 64), root)
    with pytest.raises(ManifestError, match="differs from the manifest's"):
        GroundTruth.from_dataset(root)


# --- multi-label ------------------------------------------------------------------------------


def _multilabel_frame(truth: GroundTruth, threshold: float = 0.5) -> pd.DataFrame:
    target = truth.target("test", "ms")
    scores = np.where(target.y == 1, 0.8, 0.3)
    frame = pd.DataFrame({"sample_id": target.sample_ids})
    for k, name in enumerate(truth.classes):
        frame[f"pred_{name}"] = (scores[:, k] >= threshold).astype(int)
        frame[f"prob_{name}"] = scores[:, k]
    return frame


def test_multilabel_submission_validates(tmp_path: Path) -> None:
    info = make_dataset(tmp_path / "ml", recipe="m2s-gl", multilabel=True)
    truth = GroundTruth.from_dataset(tmp_path / "ml")
    frame = _multilabel_frame(truth)
    meta = make_meta(info, modality="ms", threshold=0.5)
    path = write_submission(tmp_path / "ml.parquet", frame, meta)
    back, meta_back = read_submission(path)
    aligned = validate_submission(back, meta_back, truth)
    target = truth.target("test", "ms")
    assert aligned.target.multilabel
    assert aligned.y_pred.tolist() == target.y.tolist()
    assert target.y[1].tolist() == [0, 1, 1]  # odd ms rows carry the next class too


def test_multilabel_rules(tmp_path: Path) -> None:
    info = make_dataset(tmp_path / "ml", recipe="m2s-gl", multilabel=True)
    truth = GroundTruth.from_dataset(tmp_path / "ml")
    frame = _multilabel_frame(truth)
    with pytest.raises(SubmissionError, match="need the declared threshold"):
        validate_submission(frame, make_meta(info, modality="ms"), truth)
    with pytest.raises(SubmissionError, match=r"differ from prob_<class> >= threshold 0\.9"):
        validate_submission(frame, make_meta(info, modality="ms", threshold=0.9), truth)
    single = pd.DataFrame({"sample_id": frame["sample_id"], "pred": 0})
    with pytest.raises(SubmissionError, match="this target is multi-label"):
        validate_submission(single, make_meta(info, modality="ms", threshold=0.5), truth)
    bad = frame.copy()
    bad.loc[0, "pred_river"] = 2
    with pytest.raises(SubmissionError, match=r"1 row.* values other than 0/1"):
        validate_submission(bad, make_meta(info, modality="ms", threshold=0.5), truth)
