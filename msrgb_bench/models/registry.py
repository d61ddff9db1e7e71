"""The model registry: ``register_model``, ``create_model`` and ``list_models``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from msrgb_bench.models.base import Backbone
from msrgb_bench.registry import Registry

MODELS: Registry[type[Backbone]] = Registry("model")

B = TypeVar("B", bound=type[Backbone])


def register_model(name: str) -> Callable[[B], B]:
    """Class decorator registering a :class:`Backbone` subclass under ``name``.

    The class's ``arch`` attribute is set to ``name``.
    """

    def decorator(cls: B) -> B:
        cls.arch = name
        MODELS.register(name)(cls)
        return cls

    return decorator


def create_model(name: str, in_chans: int = 3, num_classes: int = 10, **kwargs: Any) -> Backbone:
    """Build a freshly initialised (never pretrained) backbone.

    Args:
        name: Registered architecture name (see :func:`list_models`).
        in_chans: Number of input channels.
        num_classes: Number of output logits.
        **kwargs: Extra keyword arguments of the architecture's constructor.

    Raises:
        UnknownNameError: If ``name`` is not registered.
    """
    return MODELS.get(name)(in_chans=in_chans, num_classes=num_classes, **kwargs)


def list_models() -> list[str]:
    """Return the registered architecture names, sorted."""
    return MODELS.names()
