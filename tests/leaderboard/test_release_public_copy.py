"""The public copy hides the test labels; the private label file holds them."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pandas as pd
import pytest
from leaderboard_fixtures import CLASSES, Published, make_dataset, make_meta, rgb_labels

from msrgb_bench.data.manifest import (
    content_hash,
    read_info,
    read_manifest,
    verify_files,
    write_info,
    write_manifest,
)
from msrgb_bench.leaderboard.errors import LeaderboardError, ReleaseError, SubmissionError
from msrgb_bench.leaderboard.release import release_dataset
from msrgb_bench.leaderboard.submission import validate_submission
from msrgb_bench.leaderboard.truth import GroundTruth, read_private_labels


def test_public_manifest_has_no_test_labels(published: Published) -> None:
    full = read_manifest(published.full_dir).set_index("sample_id")
    public = read_manifest(published.public_dir).set_index("sample_id")
    assert public.index.tolist() == full.index.tolist()
    test = public[public["split"] == "test"]
    assert len(test) == 18  # 9 ms + 9 rgb
    assert (test["label"] == -1).all()
    assert (test["label_name"] == "").all()
    assert all(len(v) == 0 for v in test["labels"])
    assert (test["source_path"] == "").all()
    for path in test["path"]:  # builders put class names in paths: hidden files are renamed
        assert not any(name in path for name in CLASSES), path
    kept = public[public["split"] != "test"]
    pd.testing.assert_frame_equal(kept, full.loc[kept.index])
    verify_files(published.public_dir, read_manifest(published.public_dir))


def test_public_info_keeps_the_dataset_identity(published: Published) -> None:
    info = read_info(published.public_dir)
    assert info.content_hash == published.info.content_hash
    assert info.extra == {"labels_hidden": True, "hidden_splits": ["test"]}
    assert info.classes == published.info.classes


def test_private_file_holds_the_test_labels_only(published: Published) -> None:
    truth = read_private_labels(published.private_labels)
    assert truth.dataset == "s2s-eu"
    assert truth.dataset_hash == published.info.content_hash
    assert truth.classes == CLASSES
    assert truth.available() == [("test", "ms"), ("test", "rgb")]
    ids, y = rgb_labels(published.info)
    target = truth.target("test", "rgb")
    assert target.sample_ids.tolist() == ids
    assert target.y.tolist() == y.tolist()
    assert stat.S_IMODE(published.private_labels.stat().st_mode) == 0o600


def test_public_copy_scores_nothing_but_its_predictions_score_on_the_private_file(
    published: Published,
) -> None:
    ids, y = rgb_labels(published.info)
    public_info = read_info(published.public_dir)
    meta = make_meta(public_info)  # the hash a predictor reads from the public copy
    frame = pd.DataFrame({"sample_id": ids, "pred": y})
    public_truth = GroundTruth.from_dataset(published.public_dir)
    with pytest.raises(SubmissionError, match="test labels are hidden in this public copy"):
        validate_submission(frame, meta, public_truth)
    aligned = validate_submission(frame, meta, read_private_labels(published.private_labels))
    assert aligned.target.y.tolist() == y.tolist()


def test_card_is_copied_with_a_note_and_unlisted_files_are_left_out(tmp_path: Path) -> None:
    full = tmp_path / "full"
    make_dataset(full)
    (full / "README.md").write_text("# Card\n", encoding="utf-8")
    (full / "test_labels.csv").write_text("rgb-test-0000,forest\n", encoding="utf-8")
    result = release_dataset(full, tmp_path / "pub", tmp_path / "labels.parquet")
    assert result.skipped_files == ("test_labels.csv",)
    assert not (tmp_path / "pub" / "test_labels.csv").exists()
    card = (tmp_path / "pub" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("# Card\n") and "## Hidden test labels" in card
    assert result.hidden_rows == 18


def test_ids_that_spell_their_class_are_refused(tmp_path: Path) -> None:
    full = tmp_path / "full"
    make_dataset(full)
    manifest = read_manifest(full)
    manifest["sample_id"] = [
        f"{n}_{s}" for n, s in zip(manifest["label_name"], manifest["sample_id"], strict=True)
    ]
    write_manifest(manifest, full)
    info = read_info(full)
    write_info(dataclasses.replace(info, content_hash=content_hash(manifest)), full)
    with pytest.raises(ReleaseError, match=r"18 hidden sample_id.* contain their class name"):
        release_dataset(full, tmp_path / "pub", tmp_path / "labels.parquet")
    assert not (tmp_path / "pub").exists() and not (tmp_path / "labels.parquet").exists()


def test_missing_file_leaves_nothing_behind(tmp_path: Path) -> None:
    full = tmp_path / "full"
    make_dataset(full)
    (full / "rgb" / "test" / "river" / "rgb-test-0001.tif").unlink()
    with pytest.raises(ReleaseError, match=r"listed in manifest\.parquet but missing"):
        release_dataset(full, tmp_path / "pub", tmp_path / "labels.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_release_refuses_unsafe_targets(tmp_path: Path, published: Published) -> None:
    full = tmp_path / "full"
    make_dataset(full)
    with pytest.raises(ReleaseError, match="outside the source dataset"):
        release_dataset(full, full / "pub", tmp_path / "l.parquet")
    with pytest.raises(ReleaseError, match="outside both datasets"):
        release_dataset(full, tmp_path / "pub", tmp_path / "pub" / "l.parquet")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ReleaseError, match="not an older public copy"):
        release_dataset(full, other, tmp_path / "l.parquet")
    assert (other / "keep.txt").read_text() == "mine"
    with pytest.raises(ReleaseError, match="already a public copy"):
        release_dataset(published.public_dir, tmp_path / "again", tmp_path / "l.parquet")


def test_release_can_be_redone_over_an_older_public_copy(tmp_path: Path) -> None:
    full = tmp_path / "full"
    make_dataset(full)
    release_dataset(full, tmp_path / "pub", tmp_path / "l.parquet")
    again = release_dataset(full, tmp_path / "pub", tmp_path / "l.parquet")
    assert read_info(again.public_dir).extra["labels_hidden"] is True


def test_a_public_copy_without_any_label_is_refused(tmp_path: Path) -> None:
    full = tmp_path / "full"
    make_dataset(full, counts={"train": 0, "val": 0, "test": 4})
    release_dataset(full, tmp_path / "pub", tmp_path / "l.parquet")
    with pytest.raises(LeaderboardError, match="every label is hidden"):
        GroundTruth.from_dataset(tmp_path / "pub")
