"""SemBridge's initial pairs: each student RGB image with its most similar same-class MS chip.

The trained matcher embeds every MS **train** chip (the gallery; the MS tower, MS train-split
normalisation) and every RGB image of the paired dataset's split (the queries; the RGB tower, RGB
normalisation), in batches, in eval mode. Both sides are L2-normalised; the similarity of a chunk
of queries to the whole gallery is one matrix product, other-class entries are masked to ``-inf``
and the argmax is the partner (ties: the first teacher in dataset order). Several students may
share a partner, as in the released code.

"Same class" is as in :meth:`~msrgb_bench.data.paired.PairedMSRGBDataset.default_pairs`: teachers
whose primary class is the student's, or, for a class no teacher has as primary class (multi-label
data), teachers that carry it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812  (the PyTorch convention)
from torch import Tensor

from msrgb_bench.baselines.sembridge.matcher import Matcher
from msrgb_bench.data.datamodule import normalizer
from msrgb_bench.data.dataset import MSRGBDataset
from msrgb_bench.data.paired import PairedMSRGBDataset
from msrgb_bench.engine.inference import batched_outputs, eval_mode


def _plain(dataset: MSRGBDataset, bands: tuple[str, ...]) -> MSRGBDataset:
    """Return ``dataset`` itself, or the same split without transforms and with ``bands``."""
    if dataset.transforms is None and dataset.bands == bands:
        return dataset
    return MSRGBDataset(dataset.root, dataset.split, dataset.modality, bands=bands)


def _device(matcher: Matcher, device: torch.device | str | None) -> torch.device:
    if device is None:
        return next(matcher.parameters()).device
    device = torch.device(device)
    matcher.to(device)
    return device


def gallery_bands(matcher: Matcher, dataset: PairedMSRGBDataset) -> tuple[str, ...]:
    """Return the MS bands the matcher's MS tower takes (the dataset's teacher bands if unknown).

    Raises:
        ValueError: If their number differs from the MS tower's input channels.
    """
    bands = matcher.ms_bands or dataset.teacher.bands
    if len(bands) != matcher.ms_in_chans:
        raise ValueError(
            f"{dataset.root}: the matcher's MS tower takes {matcher.ms_in_chans} bands, the "
            "dataset's teacher "
            f"side has {len(bands)} ({', '.join(bands)}); build the dataset with the matcher's "
            "bands"
        )
    return tuple(bands)


def embed_teachers(
    matcher: Matcher,
    dataset: PairedMSRGBDataset,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> Tensor:
    """Return the projected MS embeddings ``T x D`` of every MS train chip, in teacher order.

    The chips are read in the matcher's bands and normalised with the MS train-split statistics.
    The matcher runs in eval mode (its mode is restored afterwards); with ``device`` it is moved
    there.
    """
    device = _device(matcher, device)
    bands = gallery_bands(matcher, dataset)
    gallery = _plain(dataset.teacher, bands)
    normalize = normalizer(dataset.root, "ms", bands)
    with eval_mode(matcher):
        return batched_outputs(
            matcher.encode_ms, gallery, normalize, batch_size=batch_size, device=device
        )


def embed_students(
    matcher: Matcher,
    dataset: PairedMSRGBDataset,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> Tensor:
    """Return the projected RGB embeddings ``S x D`` of the dataset's RGB split, in student order.

    Images are normalised with the RGB train-split statistics, as student inputs are. The matcher
    runs in eval mode (its mode is restored afterwards); with ``device`` it is moved there.
    """
    device = _device(matcher, device)
    queries = _plain(dataset.student, dataset.student.bands)
    with eval_mode(matcher):
        return batched_outputs(
            matcher.encode_rgb, queries, normalizer(dataset.root, "rgb"),
            batch_size=batch_size, device=device,
        )  # fmt: skip


def same_class_candidates(dataset: PairedMSRGBDataset) -> np.ndarray:
    """Return the bool ``(num_classes, T)`` matrix of which teachers may partner each class.

    Row ``c`` marks the MS train samples whose primary class is ``c``, or, where there is none,
    those that carry ``c`` at all.
    """
    labels = dataset.teacher_labels_array
    multi_hot = dataset.teacher_multi_hot
    allowed = np.zeros((dataset.num_classes, len(labels)), dtype=bool)
    for cls in range(dataset.num_classes):
        allowed[cls] = labels == cls
        if not allowed[cls].any():
            allowed[cls] = multi_hot[:, cls] > 0
    return allowed


def nearest_same_class(
    student_emb: Tensor,
    student_labels: np.ndarray,
    teacher_emb: Tensor,
    candidates: np.ndarray,
    *,
    chunk_size: int = 256,
) -> np.ndarray:
    """Return, for each student, the index of the most cosine-similar allowed teacher.

    Args:
        student_emb: ``S x D`` student embeddings.
        student_labels: ``(S,)`` student class indices.
        teacher_emb: ``T x D`` teacher embeddings (on the same device).
        candidates: Bool ``(num_classes, T)``: which teachers a class may pair with.
        chunk_size: Students per matrix product.

    Returns:
        int64 ``(S,)`` teacher indices (the first one among equally similar teachers).

    Raises:
        ValueError: If a student's class has no candidate teacher.
    """
    device = teacher_emb.device
    has_candidates = np.asarray(candidates.any(axis=1), dtype=bool)
    lacking = student_labels[~has_candidates[student_labels]]
    if len(lacking):
        raise ValueError(f"class index {lacking[0]} has student samples but no MS train sample")
    teachers = F.normalize(teacher_emb.float(), dim=1)
    students = F.normalize(student_emb.float(), dim=1)
    allowed = torch.from_numpy(candidates).to(device)
    labels = torch.from_numpy(np.asarray(student_labels, dtype=np.int64)).to(device)
    chosen = np.empty(len(students), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(students), chunk_size):
            stop = start + chunk_size
            similarity = students[start:stop] @ teachers.T
            similarity.masked_fill_(~allowed[labels[start:stop]], float("-inf"))
            chosen[start:stop] = similarity.argmax(dim=1).cpu().numpy()
    return chosen


def match_initial_pairs(
    matcher: Matcher,
    dataset: PairedMSRGBDataset,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> list[str]:
    """Pair every student sample of ``dataset`` with its most similar same-class MS train chip.

    Args:
        matcher: A trained matcher (e.g. from
            :func:`~msrgb_bench.baselines.sembridge.matcher_training.load_matcher`). Its MS
            tower reads its own bands (``matcher.ms_bands``), whatever the dataset's teacher bands.
        dataset: The paired dataset; its split's RGB images are the queries, the MS train chips
            the gallery.
        batch_size: Images per forward pass, and students per similarity chunk.
        device: Where to run (the matcher is moved there); default: the matcher's device.

    Returns:
        One teacher ``sample_id`` per student sample, in student order (for
        :meth:`~msrgb_bench.data.paired.PairedMSRGBDataset.set_pairs`).

    Raises:
        ValueError: If the split's labels are hidden, a class has no MS train sample, or the
            matcher's MS tower does not fit the bands.
    """
    labels = dataset.student_labels
    if (labels < 0).any():
        raise ValueError(
            f"{dataset.root}: the {dataset.split} split has hidden student labels; it cannot be "
            "paired"
        )
    candidates = same_class_candidates(dataset)
    for cls in np.unique(labels):
        if not candidates[cls].any():
            raise ValueError(
                f"{dataset.root}: class {dataset.info.classes[cls]!r} has {dataset.split} RGB "
                "samples but no MS train sample to pair them with"
            )
    teacher_emb = embed_teachers(matcher, dataset, batch_size=batch_size, device=device)
    student_emb = embed_students(matcher, dataset, batch_size=batch_size, device=device)
    chosen = nearest_same_class(student_emb, labels, teacher_emb, candidates, chunk_size=batch_size)
    ids = dataset.teacher.sample_ids
    return [ids[i] for i in chosen]
