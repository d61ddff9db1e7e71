"""The ``Distiller`` base: a student, a frozen teacher, extra trainable modules, named losses.

A method is a :class:`Distiller` plus, usually, a :class:`DistillationTerm`:

* :class:`Distiller` owns the student, the frozen teacher (eval mode, ``requires_grad=False``,
  run under ``torch.no_grad``) and every extra trainable module. :meth:`Distiller.forward_train`
  runs both networks once (:meth:`Distiller.encode`) and returns a dict of named, already
  weighted loss terms whose sum is what the optimiser descends.
* :class:`DistillationTerm` is the method-specific part: it reads one step's
  :class:`StepOutputs` (student and teacher tokens, embeddings, logits, labels, epoch) and returns
  its weighted loss terms. It may own parameters (CTKD's temperature); they are trained with the
  student. Because a term never touches the networks, a plug-in method (SemBridge) can combine any
  registered term with its own modules: ``create_method("dkd+sembridge", ...)``.

Plug-ins subclass :class:`Distiller`, add modules in ``__init__``, extend
:meth:`Distiller.compute_losses` and use the engine hooks :meth:`Distiller.on_fit_start` and
:meth:`Distiller.on_train_epoch_start`, which receive a :class:`TrainingContext` (epoch, device,
the training dataset to re-pair, a broadcast function for DDP).

Multi-label teachers: the logit-based terms apply a softmax to the teacher's logits even when the
teacher was trained with BCE on multi-hot labels, as the ACKD paper's code does (reference §11.14):
the student is single-label and the pair's class is its label.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Self

import torch
import torch.nn.functional as F  # noqa: N812  (the PyTorch convention)
from torch import Tensor, nn

from msrgb_bench.errors import UnknownNameError
from msrgb_bench.models.base import Backbone, Features

PRESETS = ("paper", "original")
"""Preset names every method config offers: ``paper`` (the ACKD paper's code) and ``original``
(the method's own paper and code)."""


@dataclass(frozen=True, kw_only=True)
class MethodConfig(abc.ABC):
    """Settings shared by every method.

    Attributes:
        ce_weight: Weight of the student's cross-entropy on its labels (0 drops the term).
    """

    ce_weight: float

    @classmethod
    @abc.abstractmethod
    def presets(cls) -> dict[str, Self]:
        """Return the full config of each preset in :data:`PRESETS`."""

    @classmethod
    def preset(cls, name: str) -> Self:
        """Return the config of preset ``name``.

        Raises:
            UnknownNameError: If the preset does not exist.
        """
        presets = cls.presets()
        if name not in presets:
            raise UnknownNameError("preset", name, sorted(presets))
        return presets[name]

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-friendly dict."""
        return asdict(self)


@dataclass(frozen=True)
class StepOutputs:
    """What one training step computed, the only input of a :class:`DistillationTerm`.

    Attributes:
        student: The student's tokens (``B x N x C``) and embedding (``B x 512``).
        student_logits: ``B x K`` student logits (with gradient).
        labels: ``B`` class indices of the student images (the class of each pair).
        epoch: 0-based training epoch.
        teacher: The teacher's tokens and embedding (no gradient), ``None`` when the method does
            not need the teacher.
        teacher_logits: ``B x K`` teacher logits (no gradient) or ``None``.
        batch: The raw batch, for methods that need more keys.
    """

    student: Features
    student_logits: Tensor
    labels: Tensor
    epoch: int
    teacher: Features | None = None
    teacher_logits: Tensor | None = None
    batch: Mapping[str, Any] = field(default_factory=dict)

    def require_teacher(self) -> tuple[Features, Tensor]:
        """Return ``(teacher features, teacher logits)``.

        Raises:
            RuntimeError: If the teacher was not run for this step.
        """
        if self.teacher is None or self.teacher_logits is None:
            raise RuntimeError("this step ran without the teacher (needs_teacher was False)")
        return self.teacher, self.teacher_logits


class DistillationTerm(nn.Module, abc.ABC):
    """The distillation loss of one method, computed from a step's :class:`StepOutputs`.

    Subclasses set ``needs_teacher`` and implement :meth:`forward`. Parameters they own are extra
    trainable parameters of the distiller that holds them.

    Args:
        config: The method's config.
    """

    method_name: ClassVar[str] = ""
    needs_teacher: ClassVar[bool] = True

    def __init__(self, config: MethodConfig) -> None:
        super().__init__()
        self.config = config

    @abc.abstractmethod
    def forward(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return the method's named, already weighted loss terms."""

    def metrics(self) -> dict[str, Tensor]:
        """Return detached values worth logging besides the losses (e.g. a learned temperature)."""
        return {}


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class TrainingContext:
    """What the engine tells a distiller at its hooks.

    Attributes:
        epoch: 0-based epoch about to start (0 in :meth:`Distiller.on_fit_start`).
        max_epochs: Total number of epochs of the run.
        device: Device the distiller lives on.
        train_dataset: The dataset the training loader reads (a paired dataset when
            distilling). Changes made to it in :meth:`Distiller.on_train_epoch_start` are seen by
            that epoch's batches for epochs >= 1 (the loader's iterator is created after the
            hook); use :meth:`Distiller.on_fit_start` for changes before epoch 0.
        datamodule: The Lightning data module, if any.
        world_size: Number of processes.
        global_rank: Rank of this process.
        broadcast: ``broadcast(obj)`` returns rank 0's ``obj`` on every rank (identity on one
            process), to keep decisions such as re-pairing identical across DDP ranks.
    """

    epoch: int
    max_epochs: int
    device: torch.device
    train_dataset: Any | None = None
    datamodule: Any | None = None
    world_size: int = 1
    global_rank: int = 0
    broadcast: Callable[[Any], Any] = _identity


class Distiller(nn.Module):
    """A student trained with a frozen teacher and optional extra trainable modules.

    Args:
        student: The network being trained (RGB input).
        teacher: The trained teacher (MS input); it is frozen and kept in eval mode.
        config: The method's config (its ``ce_weight`` weighs the student's cross-entropy).
        term: The method's distillation term, or ``None`` for label-only training.

    Attributes:
        method: Registered method name (``"dkd"``, ``"dkd+sembridge"``), set by ``create_method``.
        preset: Preset the configs came from, set by ``create_method``.
        epoch: Current 0-based epoch, updated by :meth:`on_train_epoch_start`.
    """

    method_name: ClassVar[str] = ""

    def __init__(
        self,
        student: Backbone,
        teacher: Backbone,
        config: MethodConfig,
        term: DistillationTerm | None = None,
    ) -> None:
        super().__init__()
        if student.num_classes != teacher.num_classes:
            raise ValueError(
                f"student has {student.num_classes} classes but teacher has {teacher.num_classes}"
            )
        self.student = student
        self.teacher = teacher
        self.teacher.eval()
        self.teacher.requires_grad_(False)
        self.config = config
        self.term = term
        self.method = self.method_name
        self.preset = ""
        self.epoch = 0

    # --- modes and parameters ---------------------------------------------------------------

    def train(self, mode: bool = True) -> Self:
        """Set train/eval mode on everything but the teacher, which always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def extra_parameters(self) -> list[nn.Parameter]:
        """Return trainable parameters that belong to neither the student nor the teacher."""
        return [
            p
            for name, p in self.named_parameters()
            if p.requires_grad and not name.startswith(("student.", "teacher."))
        ]

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Yield the parameters the optimiser updates: the student's, then the extra ones."""
        yield from self.student.parameters()
        yield from self.extra_parameters()

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Return the state (parameters and buffers) of everything but the teacher."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("teacher.")}

    @property
    def needs_teacher(self) -> bool:
        """Whether a training step must run the teacher (False for label-only training)."""
        return self.term is not None and self.term.needs_teacher

    # --- training step ----------------------------------------------------------------------

    def encode(self, batch: Mapping[str, Any]) -> StepOutputs:
        """Run the student (and, if needed, the frozen teacher) once on a batch.

        Args:
            batch: A dict with ``"image"`` (student input), ``"label"`` and, when the teacher is
                needed, ``"teacher_image"``.
        """
        student = self.student.forward_features(batch["image"])
        student_logits = self.student.forward_head(student.embedding)
        teacher: Features | None = None
        teacher_logits: Tensor | None = None
        if self.needs_teacher:
            with torch.no_grad():
                teacher = self.teacher.forward_features(batch["teacher_image"])
                teacher_logits = self.teacher.forward_head(teacher.embedding)
        return StepOutputs(
            student=student,
            student_logits=student_logits,
            labels=batch["label"].long(),
            epoch=self.epoch,
            teacher=teacher,
            teacher_logits=teacher_logits,
            batch=batch,
        )

    def compute_losses(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return the named, weighted loss terms of one step (cross-entropy, then the term's)."""
        losses: dict[str, Tensor] = {}
        if self.config.ce_weight:
            ce = F.cross_entropy(out.student_logits.float(), out.labels)
            losses["ce"] = self.config.ce_weight * ce
        if self.term is not None:
            for name, value in self.term(out).items():
                if name in losses:
                    raise KeyError(f"loss term {name!r} defined twice")
                losses[name] = value
        return losses

    def forward_train(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Return the named, weighted loss terms of a training batch; their sum is the loss."""
        return self.compute_losses(self.encode(batch))

    def forward(self, x: Tensor) -> Tensor:
        """Return the student's logits (inference)."""
        return self.student(x)

    def metrics(self) -> dict[str, Tensor]:
        """Return detached values to log besides the losses."""
        return self.term.metrics() if self.term is not None else {}

    # --- pairing ------------------------------------------------------------------------------

    @property
    def needs_matcher(self) -> bool:
        """Whether :meth:`use_matcher` must be called before training (False here)."""
        return False

    def use_matcher(self, matcher: nn.Module, description: str = "") -> None:
        """Give a trained matcher that chooses the initial pairs (methods that use one).

        Raises:
            ValueError: Always here: this method pairs at random.
        """
        raise ValueError(f"method {self.method!r} does not use a matcher")

    def pairing_description(self, seed: int) -> str:
        """Say how the initial teacher partners are chosen (recorded in the run's config)."""
        return f"random same-class MS train partner, seed {seed}"

    # --- engine hooks -----------------------------------------------------------------------

    def on_fit_start(self, context: TrainingContext) -> None:
        """Called once before the first epoch's data loader is created."""

    def on_train_epoch_start(self, context: TrainingContext) -> None:
        """Called before each training epoch; records the epoch."""
        self.epoch = context.epoch

    # --- description ------------------------------------------------------------------------

    def resolved_config(self) -> dict[str, Any]:
        """Return the method's full configuration as a JSON-friendly dict."""
        term: dict[str, Any] | None = None
        if self.term is not None:
            term = {"method": self.term.method_name, "config": self.term.config.to_dict()}
        return {
            "method": self.method,
            "preset": self.preset,
            "config": self.config.to_dict(),
            "term": term,
        }
