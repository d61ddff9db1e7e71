"""The ``Distiller`` base and the comparison methods, installed as ``msrgb_bench.baselines``.

Registered methods: ``none`` (labels only), ``kd`` (Hinton), ``logits`` (Ba & Caruana), ``rkd``
(Park et al.), ``dkd`` (Zhao et al.), ``ctkd`` (Li et al.), ``lskd`` (Sun et al.) and ``distilvpr``
(Wang et al.), each with a ``paper`` and an ``original`` preset, and the plug-in ``sembridge``
(SemBridge around vanilla KD, or around method X's term as ``"X+sembridge"``)::

    from msrgb_bench.baselines import create_method
    distiller = create_method("dkd", student, teacher, preset="paper")
    losses = distiller.forward_train(batch)  # {"ce": ..., "dkd": ...}, already weighted
"""

from __future__ import annotations

from msrgb_bench.baselines import (  # noqa: F401  (registration)
    ctkd,
    distilvpr,
    dkd,
    kd,
    logits,
    lskd,
    none,
    rkd,
    sembridge,
)
from msrgb_bench.baselines.base import (
    PRESETS,
    DistillationTerm,
    Distiller,
    MethodConfig,
    StepOutputs,
    TrainingContext,
)
from msrgb_bench.baselines.registry import (
    MethodSpec,
    create_method,
    get_method,
    list_methods,
    register_method,
)

__all__ = [
    "PRESETS",
    "DistillationTerm",
    "Distiller",
    "MethodConfig",
    "MethodSpec",
    "StepOutputs",
    "TrainingContext",
    "create_method",
    "get_method",
    "list_methods",
    "register_method",
]
