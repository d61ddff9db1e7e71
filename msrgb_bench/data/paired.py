"""The paired view used for distillation: each RGB student sample with a teacher MS partner.

Student and teacher samples come from different places, so a "pair" is a choice: the MS train
sample whose teacher output guides the student on that RGB sample. The choice is a list (one
teacher ``sample_id`` per student sample) that can be replaced between epochs, as SemBridge's
dynamic re-matching does. The list lives in a shared-memory tensor, so DataLoader workers
(persistent ones included) see a new list from the next epoch on.

Contract used by the training engine::

    ds = PairedMSRGBDataset(root, split="train", ms_bands=None, rgb_transforms=None,
                            ms_transforms=None, pairs=None, seed=0)
    ds[i] -> {"image", "label", "sample_id", "index",
              "teacher_image", "teacher_label", "teacher_labels", "teacher_sample_id"}
    ds.pairs / ds.set_pairs(...) / ds.default_pairs(seed)
    ds.student_ids, ds.teacher_ids, ds.student_labels, ds.teacher_labels_array
    ds.save_pairs(path) / ds.load_pairs(path)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

from msrgb_bench.atomic import atomic_path, write_text_atomic
from msrgb_bench.data.dataset import MS_RGB_BANDS, MSRGBDataset, Sample
from msrgb_bench.data.manifest import read_manifest
from msrgb_bench.errors import ManifestError

__all__ = ["MS_RGB_BANDS", "PairedMSRGBDataset"]

PAIRS_FORMAT = "msrgb-pairs/1"


class PairedMSRGBDataset(Dataset[Sample]):
    """RGB student samples of one split, each with its current MS teacher partner.

    Teacher partners always come from the MS **train** split, whatever the student split.

    Args:
        root: The dataset folder.
        split: Student (RGB) split.
        ms_bands: Teacher bands to load, in this order; all MS bands when ``None``.
        rgb_transforms: Function applied to each student sample dict.
        ms_transforms: Function applied to each teacher sample dict (before its keys are
            renamed with the ``teacher_`` prefix).
        pairs: Initial teacher ``sample_id`` per student sample; :meth:`default_pairs` of
            ``seed`` when ``None``.
        seed: Seed of the default pairing.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        ms_bands: Sequence[str] | None = None,
        rgb_transforms: Callable[[Sample], Sample] | None = None,
        ms_transforms: Callable[[Sample], Sample] | None = None,
        pairs: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.student = MSRGBDataset(root, split, "rgb", transforms=rgb_transforms)
        self.teacher = MSRGBDataset(root, "train", "ms", bands=ms_bands, transforms=ms_transforms)
        self.info = self.student.info
        self.num_classes = len(self.info.classes)
        self._teacher_pos = {sid: i for i, sid in enumerate(self.teacher.sample_ids)}
        self._pair_index = torch.zeros(len(self.student), dtype=torch.int64).share_memory_()
        self.set_pairs(self.default_pairs(seed) if pairs is None else pairs)

    # -- accessors for matchers -----------------------------------------------------------------

    @property
    def student_ids(self) -> np.ndarray:
        """Student ``sample_id`` of each index (object array of str), in dataset order."""
        return np.asarray(self.student.sample_ids, dtype=object)

    @property
    def teacher_ids(self) -> np.ndarray:
        """Every candidate teacher ``sample_id`` (MS train split), in teacher order."""
        return np.asarray(self.teacher.sample_ids, dtype=object)

    @property
    def student_labels(self) -> np.ndarray:
        """Student class index of each index, int64 ``(S,)``."""
        return self.student.labels.copy()

    @property
    def teacher_labels_array(self) -> np.ndarray:
        """Primary class index of each teacher, int64 ``(T,)``, parallel to :attr:`teacher_ids`.

        For multi-label teachers see :attr:`teacher_multi_hot`.
        """
        return self.teacher.labels.copy()

    @property
    def teacher_multi_hot(self) -> np.ndarray:
        """Every class of each teacher as float32 multi-hot ``(T, num_classes)``."""
        return self.teacher.multi_hot.copy()

    # -- pairs ----------------------------------------------------------------------------------

    @property
    def pairs(self) -> list[str]:
        """Teacher ``sample_id`` of each student index, in student order."""
        ids = self.teacher.sample_ids
        return [ids[i] for i in self._pair_index.tolist()]

    def set_pairs(self, pairs: Sequence[str]) -> None:
        """Replace the pair list (e.g. between epochs).

        A teacher is a valid partner of a student sample when the student's class is among the
        teacher's classes (its only class for single-label data).

        Args:
            pairs: One teacher ``sample_id`` per student sample, in student order.

        Raises:
            ValueError: On a wrong length, an unknown id, a teacher outside the MS train split,
                or a teacher of another class.
        """
        pairs = list(pairs)
        if len(pairs) != len(self.student):
            raise ValueError(
                f"got {len(pairs)} pairs for {len(self.student)} {self.split} student samples"
            )
        positions = np.empty(len(pairs), dtype=np.int64)
        for i, teacher_id in enumerate(pairs):
            pos = self._teacher_pos.get(teacher_id)
            if pos is None:
                raise ValueError(self._unknown_teacher(i, teacher_id))
            positions[i] = pos
        labels = self.student.labels
        if (labels < 0).any():
            raise ValueError(
                f"the {self.split} split has hidden student labels; it cannot be paired"
            )
        ok = self.teacher.multi_hot[positions, labels] > 0
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            classes = self.info.classes
            raise ValueError(
                f"pair {i}: student {self.student.sample_ids[i]!r} is {classes[labels[i]]!r} but "
                f"teacher {pairs[i]!r} is {classes[self.teacher.labels[positions[i]]]!r}; "
                "pairs must be of the same class"
            )
        self._pair_index.copy_(torch.from_numpy(positions))

    def default_pairs(self, seed: int = 0) -> list[str]:
        """Return a seeded random same-class MS train partner for each student sample.

        The partner is drawn among teachers whose primary class is the student's, or, where
        there is none, among teachers that carry the class at all.

        Raises:
            ValueError: If a student class has no teacher sample, or labels are hidden.
        """
        labels = self.student.labels
        if (labels < 0).any():
            raise ValueError(
                f"the {self.split} split has hidden student labels; it cannot be paired"
            )
        rng = np.random.default_rng(seed)
        chosen = np.empty(len(labels), dtype=np.int64)
        for cls in np.unique(labels):
            students = np.flatnonzero(labels == cls)
            candidates = np.flatnonzero(self.teacher.labels == cls)
            if not len(candidates):
                candidates = np.flatnonzero(self.teacher.multi_hot[:, cls] > 0)
            if not len(candidates):
                raise ValueError(
                    f"class {self.info.classes[cls]!r} has {len(students)} {self.split} RGB "
                    "samples but no MS train sample to pair them with"
                )
            chosen[students] = candidates[rng.integers(0, len(candidates), size=len(students))]
        ids = self.teacher.sample_ids
        return [ids[i] for i in chosen]

    def save_pairs(self, path: str | Path) -> Path:
        """Write the pair list to ``path`` (``.json`` or ``.parquet``), atomically.

        The file maps student id to teacher id and records the dataset's content hash.
        """
        path = Path(path)
        students = self.student.sample_ids
        teachers = self.pairs
        if path.suffix == ".parquet":
            table = pa.table({"student_id": students, "teacher_id": teachers})
            table = table.replace_schema_metadata(
                {
                    "format": PAIRS_FORMAT,
                    "content_hash": self.info.content_hash,
                    "split": self.split,
                }
            )
            with atomic_path(path) as tmp:
                pq.write_table(table, tmp)
        elif path.suffix == ".json":
            document = {
                "format": PAIRS_FORMAT,
                "content_hash": self.info.content_hash,
                "split": self.split,
                "student_ids": students,
                "teacher_ids": teachers,
            }
            write_text_atomic(path, json.dumps(document, indent=1) + "\n")
        else:
            raise ValueError(f"{path}: pair files are .json or .parquet")
        return path

    def load_pairs(self, path: str | Path) -> list[str]:
        """Read a pair file written by :meth:`save_pairs` and make it the current pair list.

        Rows are matched by student id, so their order in the file does not matter.

        Returns:
            The loaded pair list, in student order.

        Raises:
            ManifestError: If the file is unreadable or malformed.
            ValueError: If it was made for another dataset or split, or fails :meth:`set_pairs`.
        """
        path = Path(path)
        meta, students, teachers = _read_pair_file(path)
        if meta.get("content_hash") != self.info.content_hash:
            raise ValueError(f"{path}: pairs were made for another dataset (content hash differs)")
        if meta.get("split") != self.split:
            raise ValueError(
                f"{path}: pairs are for split {meta.get('split')!r}, not {self.split!r}"
            )
        mapping = dict(zip(students, teachers, strict=True))
        missing = [s for s in self.student.sample_ids if s not in mapping]
        if missing or len(mapping) != len(self.student):
            raise ValueError(
                f"{path}: student ids differ from the {self.split} split "
                f"({len(missing)} missing, {len(mapping)} in file for {len(self.student)} samples)"
            )
        pairs = [mapping[s] for s in self.student.sample_ids]
        try:
            self.set_pairs(pairs)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        return pairs

    def _unknown_teacher(self, i: int, teacher_id: str) -> str:
        manifest = read_manifest(self.root)
        hit = manifest[manifest["sample_id"] == teacher_id]
        if len(hit):
            row = hit.iloc[0]
            return (
                f"pair {i}: {teacher_id!r} is a {row.modality} {row.split} sample; teacher "
                "partners must be MS samples of the train split"
            )
        return f"pair {i}: unknown teacher sample_id {teacher_id!r}"

    # -- samples --------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Return the number of student samples."""
        return len(self.student)

    def __getitem__(self, index: int) -> Sample:
        """Return student sample ``index`` with its current teacher partner."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Sample]:
        """Return the paired samples of a batch, each modality read at once."""
        partners = self._pair_index[list(indices)].numpy()
        students = self.student.__getitems__(indices)
        teachers = self.teacher.__getitems__(partners)
        if self.teacher.multilabel:
            multi = [teacher["labels"] for teacher in teachers]
        else:
            rows = torch.from_numpy(self.teacher.multi_hot[partners])
            multi = list(rows)
        return [
            {
                "image": student["image"],
                "label": student["label"],
                "sample_id": student["sample_id"],
                "index": int(index),
                "teacher_image": teacher["image"],
                "teacher_label": teacher["label"],
                "teacher_labels": labels,
                "teacher_sample_id": teacher["sample_id"],
            }
            for index, student, teacher, labels in zip(
                indices, students, teachers, multi, strict=True
            )
        ]


def _read_pair_file(path: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    if not path.is_file():
        raise ManifestError(path, "pair file not found")
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            raw = table.schema.metadata or {}
            meta = {k.decode(): v.decode() for k, v in raw.items()}
            students = [str(v) for v in table.column("student_id").to_pylist()]
            teachers = [str(v) for v in table.column("teacher_id").to_pylist()]
        else:
            document = json.loads(path.read_text(encoding="utf-8"))
            meta = {k: document.get(k) for k in ("format", "content_hash", "split")}
            students = [str(v) for v in document["student_ids"]]
            teachers = [str(v) for v in document["teacher_ids"]]
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        raise ManifestError(path, f"malformed pair file ({exc!r})") from exc
    if meta.get("format") != PAIRS_FORMAT:
        raise ManifestError(path, f"not a pair file (format {meta.get('format')!r})")
    if len(students) != len(teachers):
        raise ManifestError(path, "student and teacher columns differ in length")
    return meta, students, teachers
