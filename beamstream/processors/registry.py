"""Processor discovery: entry points in the group ``beamstream.processors`` and dotted paths.

Built-in processors register themselves through the same entry-point group (pyproject.toml), so a
plug-in package is found exactly like they are. In config, ``type`` is either a registered name
(``scan_binner``) or a dotted path ``package.module:Class``. Two plug-ins registering one name is
an error, never a silent override.
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import EntryPoint, entry_points

from beamstream.processors.base import Processor

__all__ = ["GROUP", "RegistryError", "available", "resolve"]

GROUP = "beamstream.processors"


class RegistryError(ValueError):
    """An unknown, ambiguous or unloadable processor type."""


@functools.lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    """Registered processors (read once per process: scanning installed packages is slow, and
    a config change in a running pipeline resolves every processor again)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        other = found.get(ep.name)
        if other is not None and other.value != ep.value:
            raise RegistryError(
                f"processor name {ep.name!r} is registered twice: by {other.value} and by "
                f"{ep.value}; uninstall one of the plug-ins or use a dotted path in the config"
            )
        found[ep.name] = ep
    return found


def available() -> dict[str, str]:
    """Registered processor names and the objects they point to."""
    return {name: ep.value for name, ep in sorted(_entry_points().items())}


def resolve(type_name: str) -> type[Processor]:
    """The processor class for a registered name or a ``package.module:Class`` path."""
    if ":" in type_name:
        module_name, _, attr = type_name.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise RegistryError(f"cannot load processor {type_name!r}: {e}") from None
    else:
        eps = _entry_points()
        if type_name not in eps:
            known = ", ".join(eps) or "none"
            raise RegistryError(
                f"unknown processor type {type_name!r}; known: {known} "
                "(or give a dotted path package.module:Class)"
            )
        try:
            obj = eps[type_name].load()
        except Exception as e:
            raise RegistryError(f"cannot load processor {type_name!r}: {e}") from e
    if not (isinstance(obj, type) and issubclass(obj, Processor)):
        raise RegistryError(
            f"{type_name!r} is not a processor (a Transform or Accumulator subclass)"
        )
    return obj
