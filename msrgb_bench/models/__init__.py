"""Backbones for teachers and students, behind one registry.

``create_model("resnet34", in_chans=13, num_classes=10)`` builds a freshly initialised network.
Every backbone exposes ``forward_features(x) -> Features(tokens, embedding)`` and
``forward_head(embedding) -> logits``:

================  ===========  ======================================  =======================
name              token width  what ``tokens`` holds                   embedding (B x 512)
================  ===========  ======================================  =======================
``resnet34``      512          ``layer4`` output, ``N = (H/32)^2``     mean of the tokens
``mobilenetv2``   512          last 1x1 conv (512 ch), same ``N``      mean of the tokens
``shufflenetv2``  1024         ``conv5`` output, same ``N``            Linear(1024, 512)(mean)
================  ===========  ======================================  =======================
"""

from __future__ import annotations

from msrgb_bench.models import mobilenet, resnet, shufflenet  # noqa: F401  (registration)
from msrgb_bench.models.base import EMBED_DIM, Backbone, Features
from msrgb_bench.models.registry import create_model, list_models, register_model

__all__ = ["EMBED_DIM", "Backbone", "Features", "create_model", "list_models", "register_model"]
