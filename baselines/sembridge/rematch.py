"""Dynamic re-matching (DynM) of SemBridge: the curriculum schedule and the KL teacher search.

At a few epochs of student training, every student (RGB) sample is re-paired with the teacher
(MS) sample of its own class whose softened prediction is closest to the student's current one
(reference §5.2). :func:`rematch_epochs` gives those epochs; :func:`kl_rematch` does the search for
all students at once, with matrix products instead of the released code's per-sample loops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812  (the PyTorch convention)
from torch import Tensor


def rematch_epochs(e0: int, delta: int, mu: int, max_epochs: int) -> list[int]:
    """Return the 0-based epochs at which DynM re-matches, before that epoch's training.

    ``e_t = e0 + sum_{i=1..t} (delta + mu * (i - 1))`` for ``t = 0, 1, ...`` (so ``e_0 = e0``
    and the interval grows by ``mu`` each time), keeping every ``e_t < max_epochs``.

    Args:
        e0: First re-matching epoch (>= 0).
        delta: First interval (>= 1).
        mu: Growth of the interval at each re-matching (>= 0).
        max_epochs: Number of training epochs; later epochs are dropped.

    Returns:
        The increasing list of epochs (empty when ``e0 >= max_epochs``).

    Raises:
        ValueError: If an argument is out of range.
    """
    if e0 < 0:
        raise ValueError(f"e0 must be >= 0, got {e0}")
    if delta < 1:
        raise ValueError(f"delta must be >= 1, got {delta}")
    if mu < 0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    if max_epochs < 0:
        raise ValueError(f"max_epochs must be >= 0, got {max_epochs}")
    epochs: list[int] = []
    epoch, interval = e0, delta
    while epoch < max_epochs:
        epochs.append(epoch)
        epoch += interval
        interval += mu
    return epochs


@torch.no_grad()
def kl_rematch(
    student_logits: Tensor,
    student_labels: Tensor,
    teacher_logits: Tensor,
    teacher_labels: Tensor,
    temperature: float = 3.0,
    chunk_size: int = 4096,
) -> Tensor:
    """For each student, the same-class teacher whose prediction is closest in KL divergence.

    Student ``i`` gets ``argmin_j KL(p_T,j || p_S,i) = sum_c p_T,jc (log p_T,jc - log p_S,ic)``
    over the teachers ``j`` of its class, with ``p = softmax(logits / temperature)``: the
    teacher closest to what the student currently believes (the released code's "best"; its
    "worst", the argmax, is never used). For the teachers ``J`` of one class and a chunk of its
    students the divergences are one matrix product, ``D = H_T[None, J] - log_p_S @ p_T[J]^T``
    with ``H_T[j] = sum_c p_T,jc log p_T,jc``, so only same-class pairs are ever computed and
    memory stays at ``chunk_size x |J|`` values. Ties go to the lowest teacher index. Computed in
    float32 (float64 when the logits are), on the inputs' device, without gradient.

    Args:
        student_logits: ``S x K`` student logits.
        student_labels: ``S`` student class indices.
        teacher_logits: ``T x K`` teacher logits.
        teacher_labels: ``T`` teacher class indices.
        temperature: Softening temperature (the released code uses 3).
        chunk_size: Students per matrix product.

    Returns:
        ``S`` long indices into the teacher rows.

    Raises:
        ValueError: On mismatched shapes, ``temperature <= 0``, ``chunk_size < 1``, or a student
            class that no teacher has.
    """
    if student_logits.ndim != 2 or teacher_logits.ndim != 2:
        raise ValueError("kl_rematch needs 2-D logits (samples x classes)")
    if student_logits.shape[1] != teacher_logits.shape[1]:
        raise ValueError(
            f"student logits have {student_logits.shape[1]} classes but teacher logits "
            f"{teacher_logits.shape[1]}"
        )
    if student_labels.shape != (student_logits.shape[0],):
        raise ValueError(
            f"student_labels must have shape ({student_logits.shape[0]},), "
            f"got {tuple(student_labels.shape)}"
        )
    if teacher_labels.shape != (teacher_logits.shape[0],):
        raise ValueError(
            f"teacher_labels must have shape ({teacher_logits.shape[0]},), "
            f"got {tuple(teacher_labels.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    classes = torch.unique(student_labels)
    missing = classes[~torch.isin(classes, teacher_labels)]
    if missing.numel():
        raise ValueError(f"no teacher sample for student class(es) {missing.tolist()}")

    dtype = torch.promote_types(
        torch.promote_types(student_logits.dtype, teacher_logits.dtype), torch.float32
    )
    log_p_student = F.log_softmax(student_logits.to(dtype) / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.to(dtype) / temperature, dim=1)
    p_teacher = log_p_teacher.exp()
    neg_entropy = (p_teacher * log_p_teacher).sum(dim=1)

    best = torch.empty(student_logits.shape[0], dtype=torch.long, device=student_logits.device)
    for label in classes:
        students = torch.nonzero(student_labels == label).squeeze(1)
        teachers = torch.nonzero(teacher_labels == label).squeeze(1)
        p_class = p_teacher[teachers].T
        h_class = neg_entropy[teachers]
        for start in range(0, students.numel(), chunk_size):
            rows = students[start : start + chunk_size]
            divergence = h_class[None, :] - log_p_student[rows] @ p_class
            best[rows] = teachers[divergence.argmin(dim=1)]
    return best
