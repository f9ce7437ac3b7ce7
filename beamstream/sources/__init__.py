"""Live sources: where a run's trains come from (entry-point group ``beamstream.sources``).

A source is chosen by ``[source] type = "..."`` (default ``karabo_bridge``, the Karabo Bridge
`beamstream.streamer.Receiver`). Its class subclasses `Source`, registers under the entry-point
group ``beamstream.sources`` and is built from its ``[source]`` table by `Source.from_config`,
which checks the type's own parameters (the common keys ``detector``, ``key``, ``layout``,
``frame_shape``, ``timeout`` are the pipeline's; every other key of a plug-in source is in
``SourceConfig.options``) and raises `ConfigError` naming the file and key.

An instance behaves like the `Receiver`: ``get(timeout) -> Train | None`` (None when nothing
arrived in time), ``closed`` (no train will come any more), ``close()``, ``stats() -> dict``
(``received``, ``dropped`` by reason, ``MB_per_s``, ... merged into the run's `Counters` under the
source's name), iteration and ``with``. A source can signal events to the runner with
`Source.emit`; the runner drains them with `Source.events` before each train it takes
(``"new_epoch"``: the accumulation restarts, e.g. when a detector starts a new series).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from beamstream.config import ConfigError, PipelineConfig, SourceConfig
from beamstream.plugins import Registry, RegistryError
from beamstream.streamer.train import Train

__all__ = ["Source", "SOURCES", "EVENTS", "open_source", "source_class"]

#: events a source may emit (see `Source.emit`)
EVENTS = ("new_epoch",)


class Source(ABC):
    """The contract of a live source (see the module docstring)."""

    #: the registered type name (for messages)
    type_name: ClassVar[str] = ""

    @classmethod
    def check(cls, config: SourceConfig, path: str = "<string>") -> None:
        """Raise `ConfigError` (``path: source.key: expected ..., got ...``) for bad parameters.

        The default refuses every option: a source that takes some overrides this.
        """
        if config.options:
            key = next(iter(config.options))
            raise ConfigError(f"{path}: source.{key}: unknown parameter of {config.type!r}")

    @classmethod
    @abstractmethod
    def from_config(cls, config: SourceConfig, path: str = "<string>") -> Source:
        """A new, connected source from its ``[source]`` table (after `check`)."""

    @abstractmethod
    def get(self, timeout: float | None = None) -> Train | None: ...

    @property
    @abstractmethod
    def closed(self) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def stats(self) -> dict[str, Any]: ...

    def emit(self, event: str) -> None:
        """Queue an event for the runner (one of `EVENTS`); thread-safe."""
        if event not in EVENTS:
            raise ValueError(f"unknown source event {event!r}; expected one of {EVENTS}")
        self.__dict__.setdefault("_events", []).append(event)

    def events(self) -> list[str]:
        """The events emitted since the last call (drained)."""
        pending = self.__dict__.get("_events")
        if not pending:
            return []
        out = list(pending)
        del pending[: len(out)]
        return out

    def __iter__(self) -> Iterator[Train]:
        while not self.closed:
            train = self.get(timeout=0.2)
            if train is not None:
                yield train

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SOURCES: Registry[Source] = Registry("beamstream.sources", Source, "source")


def source_class(config: PipelineConfig) -> type[Source]:
    """The class of the config's source, its parameters checked (`ConfigError` when bad)."""
    try:
        cls = SOURCES.resolve(config.source.type)
    except RegistryError as e:
        raise ConfigError(f"{config.path}: source.type: {e}") from None
    cls.check(config.source, config.path)
    return cls


def open_source(config: PipelineConfig) -> Source:
    """The config's source, built and connected."""
    return source_class(config).from_config(config.source, config.path)
