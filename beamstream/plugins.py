"""`Registry`: one plug-in mechanism for processors, sinks, sources and replay readers.

Every kind of plug-in has an entry-point group (``beamstream.processors``, ``beamstream.sinks``,
``beamstream.sources``, ``beamstream.readers``). Built-ins register through the same groups in
``pyproject.toml``, so a plug-in package is found exactly like they are. In a config, ``type`` is
a registered name or a dotted path ``package.module:Class``. Two plug-ins registering one name is
an error, never a silent override.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from beamstream.diagnose.suggest import did_you_mean

__all__ = ["Registry", "RegistryError"]

T = TypeVar("T")


class RegistryError(ValueError):
    """An unknown, ambiguous or unloadable plug-in type."""


class Registry(Generic[T]):
    """The plug-ins of one entry-point ``group`` that subclass ``base``.

    Parameters
    ----------
    group
        The entry-point group, e.g. ``beamstream.sinks``.
    base
        The class every plug-in of the group must subclass.
    kind
        What a plug-in is called in messages (``processor``, ``sink``, ...).
    """

    def __init__(self, group: str, base: type[T], kind: str):
        self.group = group
        self.base = base
        self.kind = kind
        self._cache: tuple[object, dict[str, EntryPoint]] | None = None

    def _entry_points(self) -> dict[str, EntryPoint]:
        """The group's entry points, read once per process (scanning the installed packages
        is slow, and a config change in a running pipeline resolves every processor again)."""
        if self._cache is not None and self._cache[0] is entry_points:
            return self._cache[1]
        found: dict[str, EntryPoint] = {}
        for ep in entry_points(group=self.group):
            other = found.get(ep.name)
            if other is not None and other.value != ep.value:
                raise RegistryError(
                    f"{self.kind} name {ep.name!r} is registered twice: by {other.value} and by "
                    f"{ep.value}; uninstall one of the plug-ins or use a dotted path in the config"
                )
            found[ep.name] = ep
        self._cache = (entry_points, found)
        return found

    def available(self) -> dict[str, str]:
        """Registered names and the objects they point to, sorted by name."""
        return {name: ep.value for name, ep in sorted(self._entry_points().items())}

    def load_all(self) -> dict[str, type[T]]:
        """Every registered plug-in class, by name (sorted)."""
        return {name: self.resolve(name) for name in self.available()}

    def resolve(self, type_name: str) -> type[T]:
        """The class of a registered name or a ``package.module:Class`` path."""
        if ":" in type_name:
            module_name, _, attr = type_name.partition(":")
            try:
                obj = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as e:
                raise RegistryError(f"cannot load {self.kind} {type_name!r}: {e}") from None
        else:
            eps = self._entry_points()
            if type_name not in eps:
                known = ", ".join(sorted(eps)) or "none"
                raise RegistryError(
                    f"unknown {self.kind} type {type_name!r}{did_you_mean(type_name, eps)}; "
                    f"known: {known} (or give a dotted path package.module:Class)"
                )
            try:
                obj = eps[type_name].load()
            except Exception as e:
                raise RegistryError(f"cannot load {self.kind} {type_name!r}: {e}") from e
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise RegistryError(
                f"{type_name!r} is not a {self.kind} (a {self.base.__name__} subclass)"
            )
        return obj

    def require_registered(self, type_names: Iterable[str], origin: str) -> None:
        """Refuse types that are not registered plug-ins, before importing anything.

        A registered name, or a dotted path that one of the group's entry points registers
        (``type = "beamstream.processors.maps:ScanMap"``), is accepted; any other dotted path
        would import code named by ``origin`` (a file read from disk, not the user's own config)
        and is refused.

        Raises
        ------
        RegistryError
            Naming ``origin`` and the unregistered types.
        """
        eps = self._entry_points()
        values = {ep.value for ep in eps.values()}
        bad = [t for t in type_names if t not in eps and t not in values]
        if bad:
            raise RegistryError(
                f"{origin}: {self.kind}s {', '.join(repr(t) for t in bad)} are not registered "
                f"plug-ins (entry point group {self.group!r}); install the package that "
                "registers them"
            )
