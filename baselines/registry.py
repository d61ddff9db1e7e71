"""The method registry: ``register_method``, ``create_method`` and ``list_methods``.

A registered method is either a :class:`DistillationTerm` (run by the plain :class:`Distiller`)
or a :class:`Distiller` subclass (label-only training, or a plug-in such as SemBridge that adds its
own modules and takes another method's term). ``create_method("X+P", ...)`` builds plug-in ``P``
with method ``X``'s distillation term; ``create_method("P", ...)`` uses ``P``'s default term.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from msrgb_bench.baselines.base import DistillationTerm, Distiller, MethodConfig
from msrgb_bench.errors import UnknownNameError
from msrgb_bench.models.base import Backbone
from msrgb_bench.registry import Registry

PLUGIN_SEPARATOR = "+"


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        name: Registry name.
        config_cls: Its config class (with ``paper`` and ``original`` presets).
        term_cls: Its distillation term, or ``None``.
        distiller_cls: The distiller class that runs it.
        default_term: For plug-ins: the method whose term is used when none is named.
    """

    name: str
    config_cls: type[MethodConfig]
    term_cls: type[DistillationTerm] | None
    distiller_cls: type[Distiller]
    default_term: str | None = None

    @property
    def is_plugin(self) -> bool:
        """Whether this method accepts another method's term (``"X+name"``)."""
        return self.default_term is not None


METHODS: Registry[MethodSpec] = Registry("method")

C = TypeVar("C", bound=type[DistillationTerm] | type[Distiller])


def register_method(
    name: str, config: type[MethodConfig], *, default_term: str | None = None
) -> Callable[[C], C]:
    """Class decorator registering a method.

    Decorate a :class:`DistillationTerm` subclass (run by the plain :class:`Distiller`) or a
    :class:`Distiller` subclass (label-only training or a plug-in).

    Args:
        name: Registry name; must not contain ``"+"``.
        config: The method's config class.
        default_term: Makes the method a plug-in whose term comes from another method; this names
            the method used when ``create_method`` gets the plug-in's name alone.
    """
    if PLUGIN_SEPARATOR in name:
        raise ValueError(f"method names cannot contain {PLUGIN_SEPARATOR!r}: {name!r}")

    def decorator(cls: C) -> C:
        cls.method_name = name
        if issubclass(cls, DistillationTerm):
            spec = MethodSpec(name, config, cls, Distiller, default_term)
        else:
            spec = MethodSpec(name, config, None, cls, default_term)
        METHODS.register(name)(spec)
        return cls

    return decorator


def list_methods() -> list[str]:
    """Return the registered method names, sorted (combinations ``"X+P"`` are not listed)."""
    return METHODS.names()


def get_method(name: str) -> MethodSpec:
    """Return the spec of a registered method (no combinations)."""
    return METHODS.get(name)


def _apply_overrides(
    configs: list[MethodConfig], overrides: Mapping[str, Any]
) -> list[MethodConfig]:
    names = [{f.name for f in fields(c)} for c in configs]
    unknown = [key for key in overrides if not any(key in n for n in names)]
    if unknown:
        known = sorted(set().union(*names))
        raise UnknownNameError("method setting", unknown[0], known)
    return [
        replace(c, **{k: v for k, v in overrides.items() if k in n})
        for c, n in zip(configs, names, strict=True)
    ]


def create_method(
    name: str,
    student: Backbone,
    teacher: Backbone,
    *,
    preset: str = "paper",
    overrides: Mapping[str, Any] | None = None,
) -> Distiller:
    """Build the distiller of method ``name``.

    Args:
        name: A registered method (``"kd"``), or ``"X+P"``: plug-in ``P`` with ``X``'s term.
        student: The student network.
        teacher: The trained teacher network (frozen by the distiller).
        preset: ``"paper"`` or ``"original"``.
        overrides: Config fields to change, applied to every config (the plug-in's and the
            term's) that has the field.

    Raises:
        UnknownNameError: For an unknown method, preset or setting.
        ValueError: For a combination whose parts cannot combine.
    """
    term_name: str | None
    if PLUGIN_SEPARATOR in name:
        term_name, _, main_name = name.partition(PLUGIN_SEPARATOR)
        main = get_method(main_name)
        if not main.is_plugin:
            raise ValueError(f"{main_name!r} is not a plug-in method; cannot build {name!r}")
    else:
        main = get_method(name)
        term_name = main.default_term if main.is_plugin else (name if main.term_cls else None)

    main_config = main.config_cls.preset(preset)
    term_spec = get_method(term_name) if term_name is not None else None
    if term_spec is not None and term_spec.term_cls is None:
        raise ValueError(f"method {term_spec.name!r} has no distillation term to plug in")

    if term_spec is None or term_spec is main:
        (main_config,) = _apply_overrides([main_config], overrides or {})
        term_config = main_config
    else:
        term_config = term_spec.config_cls.preset(preset)
        main_config, term_config = _apply_overrides([main_config, term_config], overrides or {})

    term = None
    if term_spec is not None and term_spec.term_cls is not None:
        term = term_spec.term_cls(term_config)
    distiller = main.distiller_cls(student, teacher, main_config, term)
    distiller.method = name
    distiller.preset = preset
    return distiller
