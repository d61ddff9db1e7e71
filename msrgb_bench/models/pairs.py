"""Teacher/student pairs written ``T/S`` with one letter per backbone, as in the paper's tables.

``R`` = ResNet-34, ``M`` = MobileNetV2, ``S`` = ShuffleNetV2; ``"R/M"`` is a ResNet-34 teacher and
a MobileNetV2 student. :data:`PAPER_PAIRS` are the six pairs the ACKD paper reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from msrgb_bench.errors import UnknownNameError

ARCH_CODES = {"R": "resnet34", "M": "mobilenetv2", "S": "shufflenetv2"}
PAPER_PAIRS = ("R/R", "M/M", "S/S", "R/M", "R/S", "M/S")


@dataclass(frozen=True)
class Pair:
    """A teacher/student pair of backbones.

    Attributes:
        code: ``"T/S"`` (e.g. ``"R/M"``).
        teacher: Teacher backbone name.
        student: Student backbone name.
    """

    code: str
    teacher: str
    student: str

    @property
    def folder(self) -> str:
        """The pair's folder name (``R/M`` -> ``R-M``)."""
        return self.code.replace("/", "-")


def parse_pair(text: str) -> Pair:
    """Parse ``"T/S"`` (letters of :data:`ARCH_CODES`).

    Raises:
        ValueError: If ``text`` is not two codes joined by ``/``.
        UnknownNameError: For an unknown backbone letter.
    """
    parts = text.strip().upper().split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"a pair is TEACHER/STUDENT, e.g. R/M; got {text!r}")
    for code in parts:
        if code not in ARCH_CODES:
            known = [f"{k} ({v})" for k, v in ARCH_CODES.items()]
            raise UnknownNameError("backbone code", code, known)
    return Pair(code="/".join(parts), teacher=ARCH_CODES[parts[0]], student=ARCH_CODES[parts[1]])
