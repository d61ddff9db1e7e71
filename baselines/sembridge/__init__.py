"""SemBridge (AAAI 2026, arXiv 2511.08901): Student-Friendly Matching + Semantic-aware Alignment.

Modules:

* :mod:`.method`: the ``sembridge`` plug-in distiller (``"sembridge"`` = with vanilla KD,
  ``"dkd+sembridge"`` = with DKD's term, and so on) and its config with the ablation switches;
* :mod:`.alignment`: SKA (attention transport plans, column importance, Gram-form CORAL, and the
  Sinkhorn ``ot`` variant);
* :mod:`.rematch`: DynM (the re-matching schedule and the KL argmin over cached logits);
* :mod:`.matcher`, :mod:`.matcher_training`, :mod:`.initial_pairs`: SSM (the two-tower matcher,
  ``msrgb train-matcher``, and the batched initial same-class retrieval).
"""

from __future__ import annotations

from msrgb_bench.baselines.sembridge.method import SemBridge, SemBridgeConfig

__all__ = ["SemBridge", "SemBridgeConfig"]
