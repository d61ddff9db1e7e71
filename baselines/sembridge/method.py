"""``sembridge``: SemBridge (AAAI 2026) around vanilla KD, or around method X as ``X+sembridge``.

SemBridge is a plug-in: it wraps another method's distillation term (vanilla KD by default,
``"dkd+sembridge"`` puts DKD's term in its place) and adds

* **SSM initial pairs** (:meth:`SemBridge.on_fit_start`): every student train sample gets the
  most similar same-class MS train sample under a trained matcher
  (:mod:`~msrgb_bench.baselines.sembridge.initial_pairs`). Without SSM (``ssm=False``, the
  "w/o SSM" ablation) the seeded random same-class pairs of the paired dataset stay.
* **DynM re-matching** (:meth:`SemBridge.on_train_epoch_start`): at the epochs of
  :func:`~msrgb_bench.baselines.sembridge.rematch.rematch_epochs`, every student train sample is
  re-paired with the same-class teacher sample whose teacher prediction is closest (smallest
  ``KL(p_teacher || p_student)`` at ``T = 3``) to the student's current prediction. Teacher
  logits of every MS train chip are computed once and cached; student logits are recomputed in
  eval mode at each re-matching; the argmin is a matrix product over the cached logits.
* **SKA** (:class:`~msrgb_bench.baselines.sembridge.alignment.SemanticAlignment`): CORAL between
  attention-re-weighted tokens (``ska_tokens``) and between pooled embeddings
  (``ska_embedding``), each weighted ``ska_weight * ot_weight`` (0.3 x 0.01 in the released code).

Multi-label teachers: a teacher is a candidate for a student class when it carries that class,
as in :meth:`~msrgb_bench.data.paired.PairedMSRGBDataset.set_pairs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import torch
from torch import Tensor, nn

from msrgb_bench.baselines.base import (
    DistillationTerm,
    Distiller,
    MethodConfig,
    StepOutputs,
    TrainingContext,
)
from msrgb_bench.baselines.registry import register_method
from msrgb_bench.baselines.sembridge.alignment import PLAN_KINDS, PlanKind, SemanticAlignment
from msrgb_bench.baselines.sembridge.rematch import kl_rematch, rematch_epochs
from msrgb_bench.models.base import Backbone

if TYPE_CHECKING:
    from msrgb_bench.baselines.sembridge.matcher import Matcher


@dataclass(frozen=True, kw_only=True)
class SemBridgeConfig(MethodConfig):
    """SemBridge settings (the plug-in's; the KD term has its own config).

    Presets: SemBridge's own settings are the same in ``paper`` and ``original`` (it is the
    ACKD paper's own method): CE 0.3, SKA 0.3 x 0.01, 8 heads of width 512, four re-matchings
    at ``(e0, delta, mu) = (30, 30, 5)``, the S2S-EU schedule (epochs 30, 60, 95, 135). The
    plugged-in KD term takes the same preset name from its own config, so ``--preset original``
    gives ``sembridge`` Hinton's KD settings (T = 4 with T^2, KD 0.9) while SemBridge's CE
    weight stays 0.3; ``paper`` is the released code throughout.

    Attributes:
        ska_weight: The released code's ``lam_ot`` (0.3).
        ot_weight: The released code's ``ot_weights`` (0.01); each alignment term is weighted
            ``ska_weight * ot_weight``.
        ska_dim: Width the tokens are aligned at (tokens of another width are projected).
        ska_heads: Attention heads of each intra-modal plan.
        ska_plan: ``"attention"`` (the released code) or ``"ot"`` (an entropic optimal-transport
            plan computed by Sinkhorn, an extension beyond the released code).
        ot_epsilon: Entropic regularisation of the ``ot`` plan.
        ot_iters: Sinkhorn iterations of the ``ot`` plan.
        token_alignment: Keep the CORAL term on re-weighted tokens (``L_ot1``).
        embedding_alignment: Keep the CORAL term on pooled embeddings (``L_ot2``).
        ssm: Initial pairs from the self-supervised matcher (``False``: random same-class pairs).
        dynm: Re-match during training.
        dynm_e0: First re-matching epoch (0-based, before that epoch's training).
        dynm_delta: Base interval between re-matchings.
        dynm_mu: Growth of the interval at each re-matching.
        dynm_count: At most this many re-matchings (the released schedules stop after 4 on
            S2S-EU and 5 on S2S-CN and M2S-GL, before the formula's next epoch < 200);
            ``None`` for every epoch of the formula within the run.
        dynm_temperature: Softmax temperature of the re-matching divergence.
        inference_batch_size: Batch size of the gallery and re-matching forward passes.
    """

    ska_weight: float
    ot_weight: float
    ska_dim: int = 512
    ska_heads: int = 8
    ska_plan: PlanKind = "attention"
    ot_epsilon: float = 0.1
    ot_iters: int = 50
    token_alignment: bool = True
    embedding_alignment: bool = True
    ssm: bool = True
    dynm: bool = True
    dynm_e0: int = 30
    dynm_delta: int = 30
    dynm_mu: int = 5
    dynm_count: int | None = 4
    dynm_temperature: float = 3.0
    inference_batch_size: int = 256

    def __post_init__(self) -> None:
        if self.ska_plan not in PLAN_KINDS:
            raise ValueError(
                f"ska_plan must be one of {', '.join(PLAN_KINDS)}, got {self.ska_plan!r}"
            )
        if self.dynm_temperature <= 0:
            raise ValueError(f"dynm_temperature must be positive, got {self.dynm_temperature}")
        if self.dynm_count is not None and self.dynm_count < 0:
            raise ValueError(f"dynm_count must be >= 0 or None, got {self.dynm_count}")
        if self.inference_batch_size < 1:
            raise ValueError("inference_batch_size must be at least 1")
        if self.dynm:
            if self.dynm_e0 < 1:
                raise ValueError(
                    f"dynm_e0 must be at least 1, got {self.dynm_e0}: epoch 0 trains on the "
                    "initial (SSM) pairs"
                )
            rematch_epochs(self.dynm_e0, self.dynm_delta, self.dynm_mu, self.dynm_e0 + 1)

    @classmethod
    def presets(cls) -> dict[str, Self]:
        """Return the ``paper`` and ``original`` presets (both the released code)."""
        released = cls(ce_weight=0.3, ska_weight=0.3, ot_weight=0.01)
        return {"paper": released, "original": released}

    @property
    def alignment_weight(self) -> float:
        """The weight of each alignment term."""
        return self.ska_weight * self.ot_weight


@dataclass
class _MatcherSlot:
    """Holds the matcher outside the module tree (it is neither trained nor checkpointed)."""

    matcher: Matcher | None = None
    description: str = ""


@register_method("sembridge", SemBridgeConfig, default_term="kd")
class SemBridge(Distiller):
    """SemBridge around another method's distillation term.

    Args:
        student: The RGB student.
        teacher: The trained MS teacher (frozen).
        config: SemBridge's settings.
        term: The KD term (vanilla KD for ``"sembridge"``).

    Attributes:
        alignment: The SKA module, or ``None`` when both alignment terms are switched off.
        rematch_log: One entry per pairing (``epoch`` -1 for the SSM pairs, then each
            re-matching): the fraction of pairs that changed. The latest is logged as
            ``train/pairs_changed``.
    """

    config: SemBridgeConfig

    def __init__(
        self,
        student: Backbone,
        teacher: Backbone,
        config: SemBridgeConfig,
        term: DistillationTerm | None = None,
    ) -> None:
        super().__init__(student, teacher, config, term)
        self.alignment: SemanticAlignment | None = None
        if config.token_alignment or config.embedding_alignment:
            self.alignment = SemanticAlignment(
                teacher.token_dim,
                student.token_dim,
                dim=config.ska_dim,
                heads=config.ska_heads,
                plan=config.ska_plan,
                token_coral=config.token_alignment,
                embedding_coral=config.embedding_alignment,
                ot_epsilon=config.ot_epsilon,
                ot_iters=config.ot_iters,
            )
        self._matcher = _MatcherSlot()
        self._teacher_logits: Tensor | None = None
        self.rematch_log: list[dict[str, float]] = []
        self._pairs_changed = 0.0

    # --- SFM: matcher and pairs ----------------------------------------------------------------

    @property
    def needs_teacher(self) -> bool:
        """SemBridge always runs the teacher (its tokens feed SKA)."""
        return True

    @property
    def needs_matcher(self) -> bool:
        """Whether the initial pairs come from a matcher (``ssm``)."""
        return self.config.ssm

    def use_matcher(self, matcher: nn.Module, description: str = "") -> None:
        """Give the trained SSM matcher that makes the initial pairs (see ``ssm``).

        Raises:
            TypeError: If ``matcher`` is not a SemBridge matcher.
        """
        from msrgb_bench.baselines.sembridge.matcher import Matcher

        if not isinstance(matcher, Matcher):
            raise TypeError(f"expected a SemBridge Matcher, got {type(matcher).__name__}")
        self._matcher = _MatcherSlot(matcher, description)

    def pairing_description(self, seed: int) -> str:
        """Say how the initial pairs are chosen (recorded in the run's config)."""
        if self.config.ssm:
            return f"SSM matcher {self._matcher.description}".strip()
        return super().pairing_description(seed)

    def rematch_schedule(self, max_epochs: int) -> list[int]:
        """Return the 0-based epochs before which pairs are re-matched."""
        if not self.config.dynm:
            return []
        cfg = self.config
        epochs = rematch_epochs(cfg.dynm_e0, cfg.dynm_delta, cfg.dynm_mu, max_epochs)
        return epochs if cfg.dynm_count is None else epochs[: cfg.dynm_count]

    def on_fit_start(self, context: TrainingContext) -> None:
        """Replace the random initial pairs by the matcher's (when ``ssm``).

        Raises:
            ValueError: If ``ssm`` is on and no matcher was given.
        """
        super().on_fit_start(context)
        if not self.config.ssm:
            return
        matcher = self._matcher.matcher
        if matcher is None:
            raise ValueError(
                "SemBridge's SSM needs a matcher: train one with `msrgb train-matcher` and pass "
                "--matcher RUN, or switch SSM off with --set ssm=false"
            )
        from msrgb_bench.baselines.sembridge.initial_pairs import match_initial_pairs

        dataset = _paired_dataset(context)
        pairs = None
        if context.global_rank == 0:
            pairs = match_initial_pairs(
                matcher,
                dataset,
                batch_size=self.config.inference_batch_size,
                device=context.device,
            )
        self._replace_pairs(dataset, context.broadcast(pairs), epoch=-1)
        self._matcher = _MatcherSlot(None, self._matcher.description)

    def on_train_epoch_start(self, context: TrainingContext) -> None:
        """Record the epoch and re-match the pairs at the DynM epochs."""
        super().on_train_epoch_start(context)
        if context.epoch in self.rematch_schedule(context.max_epochs):
            self.rematch(context)

    def rematch(self, context: TrainingContext) -> None:
        """Re-pair every student train sample by the smallest teacher-student KL (DynM)."""
        dataset = _paired_dataset(context)
        new_pairs = None
        if context.global_rank == 0:
            new_pairs = self._rematched_pairs(dataset, context.device)
        self._replace_pairs(dataset, context.broadcast(new_pairs), epoch=context.epoch)

    def _replace_pairs(self, dataset: Any, pairs: list[str], epoch: int) -> None:
        old = np.asarray(dataset.pairs, dtype=object)
        changed = float(np.mean(old != np.asarray(pairs, dtype=object)))
        dataset.set_pairs(pairs)
        self._pairs_changed = changed
        self.rematch_log.append({"epoch": float(epoch), "changed": changed})

    def metrics(self) -> dict[str, Tensor]:
        """Return the term's metrics and the fraction of pairs the last pairing changed."""
        return {**super().metrics(), "pairs_changed": torch.tensor(self._pairs_changed)}

    def _rematched_pairs(self, dataset: Any, device: torch.device) -> list[str]:
        from msrgb_bench.baselines.sembridge.initial_pairs import same_class_candidates
        from msrgb_bench.data.datamodule import normalizer
        from msrgb_bench.engine.inference import batched_outputs, eval_mode

        size = self.config.inference_batch_size
        if self._teacher_logits is None:
            ms_norm = normalizer(dataset.root, "ms", dataset.teacher.bands)
            self._teacher_logits = batched_outputs(
                self.teacher, dataset.teacher, ms_norm, batch_size=size, device=device
            )
        rgb_norm = normalizer(dataset.root, "rgb")
        with eval_mode(self.student):
            student_logits = batched_outputs(
                self.student, dataset.student, rgb_norm, batch_size=size, device=device
            )
        # One row per (teacher, class it may partner), the same candidates as the SSM pairing:
        # a multi-label teacher can be a candidate of several classes.
        classes, rows = np.nonzero(same_class_candidates(dataset))
        row_index = torch.from_numpy(rows).to(device)
        best = kl_rematch(
            student_logits,
            torch.from_numpy(dataset.student_labels).to(device),
            self._teacher_logits[row_index],
            torch.from_numpy(classes).to(device),
            temperature=self.config.dynm_temperature,
        )
        ids = dataset.teacher_ids
        return [str(ids[rows[i]]) for i in best.cpu().numpy()]

    # --- SKA -----------------------------------------------------------------------------------

    def compute_losses(self, out: StepOutputs) -> dict[str, Tensor]:
        """Return CE, the KD term's losses and the weighted SKA terms."""
        losses = super().compute_losses(out)
        if self.alignment is not None:
            teacher, _ = out.require_teacher()
            for name, value in self.alignment(teacher, out.student).items():
                losses[name] = self.config.alignment_weight * value
        return losses


def _paired_dataset(context: TrainingContext) -> Any:
    dataset = context.train_dataset
    if dataset is None or not hasattr(dataset, "set_pairs"):
        raise ValueError("SemBridge must train on a paired dataset (one that offers set_pairs)")
    return dataset
