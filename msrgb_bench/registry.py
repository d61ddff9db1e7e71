"""One small registry helper serving models, methods, sources and recipes (timm style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from msrgb_bench.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table with a decorator to fill it.

    Args:
        kind: What the registry holds, used in error messages (``"model"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Return a decorator that registers its argument under ``name``.

        Raises:
            ValueError: If ``name`` is already registered.
        """

        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Return the object registered under ``name``.

        Raises:
            UnknownNameError: If nothing is registered under ``name``.
        """
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
