"""Make a public copy of a dataset without its test labels, and the private label file.

The public copy is the dataset folder with, for every row of a hidden split (``test``):

- ``label`` = -1, ``label_name`` = "" and ``labels`` = [] (the manifest schema's "hidden");
- ``source_path`` = "" (an original archive path such as ``Forest/Forest_12.tif`` names the
  class);
- the file renamed to ``<modality>/<split>/<opaque name><suffix>``, where the opaque name is a
  sha256 of the sample id and the file's checksum (builders put class names in paths).

Dataset identity: the public ``dataset.json`` keeps the original ``content_hash`` (the hash
of the full manifest, labels included) and adds ``extra["labels_hidden"] = True`` and
``extra["hidden_splits"]``. Submissions made against the public copy therefore carry the same
``dataset_hash`` the leaderboard server expects. The public manifest no longer hashes to that
value; readers that verify the hash skip the check when ``labels_hidden`` is set.

Only the files the manifest lists and the data card (``README.md``, with a note appended) are
copied (hard links where the file system allows); anything else in the folder might hold labels
and is left out and reported. The release refuses a dataset whose hidden sample ids contain
their class name, since no redaction could hide such labels.

The private label file (see :mod:`msrgb_bench.leaderboard.truth`) holds the hidden rows'
labels, the dataset's hash and classes; it is written readable by its owner only.

Note: the sources are public datasets, so a determined person can still recover labels by
matching images against the originals; hiding them keeps honest users honest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from msrgb_bench.atomic import replace_dir
from msrgb_bench.data.manifest import (
    CARD_NAME,
    INFO_NAME,
    MANIFEST_NAME,
    content_hash,
    read_info,
    read_manifest,
    write_info,
    write_manifest,
)
from msrgb_bench.leaderboard.errors import ReleaseError
from msrgb_bench.leaderboard.truth import HIDDEN_LABEL, GroundTruth, write_private_labels

HIDDEN_SPLITS = ("test",)
CARD_NOTE = """

## Hidden test labels

This is the public copy of the dataset: the labels of the {splits} split(s) are hidden (label -1)
and the leaderboard server scores predictions for them. `dataset.json` keeps the full dataset's
`content_hash` as its identity.
"""


@dataclass(frozen=True)
class ReleaseResult:
    """What :func:`release_dataset` wrote.

    Attributes:
        public_dir: The public copy.
        private_labels: The private label file.
        dataset_hash: The dataset's identity (``content_hash``).
        hidden_rows: Number of rows whose labels were hidden.
        skipped_files: Files of the source folder that were not copied (relative paths).
    """

    public_dir: Path
    private_labels: Path
    dataset_hash: str
    hidden_rows: int
    skipped_files: tuple[str, ...]


def release_dataset(
    src: Path,
    public_dir: Path,
    private_labels: Path,
    hidden_splits: Sequence[str] = HIDDEN_SPLITS,
) -> ReleaseResult:
    """Write a public copy of ``src`` without the labels of ``hidden_splits``, and their labels.

    Args:
        src: A built dataset folder.
        public_dir: Where the public copy goes (created; an older public copy is replaced).
        private_labels: Where the private label file goes (outside ``public_dir``).
        hidden_splits: The splits whose labels are hidden.

    Returns:
        What was written.

    Raises:
        ReleaseError: If the copy cannot be made safely (see the module docstring).
        ManifestError: If ``src`` is not a valid dataset folder.
    """
    src, public_dir, private_labels = Path(src), Path(public_dir), Path(private_labels)
    info = read_info(src)
    manifest = read_manifest(src)
    if info.extra.get("labels_hidden"):
        raise ReleaseError(src / INFO_NAME, "this is already a public copy with hidden labels")
    if content_hash(manifest) != info.content_hash:
        raise ReleaseError(src / INFO_NAME, "content_hash does not match manifest.parquet")
    _check_targets(src, public_dir, private_labels)
    hidden = manifest["split"].isin(list(hidden_splits)).to_numpy()
    if not hidden.any():
        raise ReleaseError(src / MANIFEST_NAME, f"no rows in split(s) {', '.join(hidden_splits)}")
    _check_ids_hide_labels(src, manifest[hidden], info.classes)

    public = manifest.copy()
    new_paths = public["path"].to_numpy(dtype=object).copy()
    for i in np.flatnonzero(hidden):
        row = manifest.iloc[i]
        opaque = hashlib.sha256(f"{row['sample_id']}\0{row['sha256']}".encode()).hexdigest()[:32]
        new_paths[i] = f"{row['modality']}/{row['split']}/{opaque}{Path(row['path']).suffix}"
    if len(set(new_paths)) != len(new_paths):
        raise ReleaseError(src / MANIFEST_NAME, "renamed hidden files collide with other paths")
    public["path"] = new_paths
    public.loc[hidden, "label"] = HIDDEN_LABEL
    public.loc[hidden, "label_name"] = ""
    public.loc[hidden, "source_path"] = ""
    public["labels"] = [
        [] if h else list(v) for h, v in zip(hidden, manifest["labels"], strict=True)
    ]

    staging = public_dir.with_name(f".{public_dir.name}.staging-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True)
        for old, new in zip(manifest["path"], new_paths, strict=True):
            _link_or_copy(src / old, staging / new)
        card = src / CARD_NAME
        if card.is_file():
            note = CARD_NOTE.format(splits=", ".join(hidden_splits))
            (staging / CARD_NAME).write_text(card.read_text(encoding="utf-8") + note, "utf-8")
        write_manifest(public, staging)
        extra = {**info.extra, "labels_hidden": True, "hidden_splits": list(hidden_splits)}
        write_info(dataclasses.replace(info, extra=extra), staging)
        truth = GroundTruth(
            dataset=info.recipe,
            dataset_hash=info.content_hash,
            classes=tuple(info.classes),
            multilabel=info.multilabel,
            samples=manifest.loc[hidden, ["sample_id", "modality", "split", "label", "labels"]],
        )
        write_private_labels(truth, private_labels)
        replace_dir(staging, public_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

    listed = {*manifest["path"], CARD_NAME, MANIFEST_NAME, INFO_NAME}
    skipped = sorted(
        p.relative_to(src).as_posix()
        for p in src.rglob("*")
        if p.is_file() and p.relative_to(src).as_posix() not in listed
    )
    return ReleaseResult(
        public_dir=public_dir,
        private_labels=private_labels,
        dataset_hash=info.content_hash,
        hidden_rows=int(hidden.sum()),
        skipped_files=tuple(skipped),
    )


def _check_targets(src: Path, public_dir: Path, private_labels: Path) -> None:
    src_abs, public_abs = src.resolve(), public_dir.resolve()
    private_abs = private_labels.resolve()
    if public_abs == src_abs or src_abs in public_abs.parents or public_abs in src_abs.parents:
        raise ReleaseError(public_dir, "the public copy must be outside the source dataset")
    if public_abs in private_abs.parents or src_abs in private_abs.parents:
        raise ReleaseError(private_labels, "the private label file must be outside both datasets")
    if public_dir.exists() and any(public_dir.iterdir()):
        info_path = public_dir / INFO_NAME
        try:
            is_public_copy = bool(read_info(public_dir).extra.get("labels_hidden"))
        except Exception:
            is_public_copy = False
        if not is_public_copy:
            raise ReleaseError(
                info_path.parent, "exists and is not an older public copy; refusing to replace it"
            )


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _check_ids_hide_labels(src: Path, hidden: pd.DataFrame, classes: Sequence[str]) -> None:
    """Refuse sample ids that spell out their own class name."""
    names = [_normalise(c) for c in classes]
    leaks = []
    for sample_id, labels in zip(hidden["sample_id"], hidden["labels"], strict=True):
        norm = _normalise(sample_id)
        if any(len(names[k]) >= 3 and names[k] in norm for k in labels):
            leaks.append(sample_id)
    if leaks:
        shown = ", ".join(repr(s) for s in leaks[:3])
        raise ReleaseError(
            src / MANIFEST_NAME,
            f"{len(leaks)} hidden sample_id(s) contain their class name (e.g. {shown}); the "
            "labels cannot be hidden: rebuild the dataset with opaque sample ids",
        )


def _link_or_copy(source: Path, target: Path) -> None:
    if not source.is_file():
        raise ReleaseError(source, "listed in manifest.parquet but missing")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
