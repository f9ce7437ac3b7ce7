"""Several Karabo Bridge inputs matched by train id (``[source] type = "karabo_matched"``).

The ``[source]`` table takes ``inputs`` (tables: ``endpoint``, ``socket``, ``name``,
``offset``) and ``match`` (``deadline_ms``, ``max_pending``, ``incomplete``,
``correct_offsets``); a table with ``inputs`` and no ``type`` is of this type. See
`beamstream.streamer.multi.MatchedSource` and ``docs/megapixel.md``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from beamstream.config import ConfigError, PipelineConfig, SourceConfig
from beamstream.sources import Source
from beamstream.streamer.multi import MatchedSource

__all__ = ["MatchedKaraboSource", "with_inputs"]

_KEYS = ("inputs", "match")


class MatchedKaraboSource(MatchedSource, Source):
    """A `MatchedSource` as a source plug-in."""

    type_name = "karabo_matched"

    @classmethod
    def check(cls, config: SourceConfig, path: str = "<string>") -> None:
        """``inputs`` and ``match``, with located errors (``path: source.inputs[1].socket``)."""
        extra = [k for k in config.options if k not in _KEYS]
        if extra:
            raise ConfigError(
                f"{path}: source.{extra[0]}: unknown parameter of 'karabo_matched' (its own: "
                "inputs, match)"
            )
        if "inputs" not in config.options:
            raise ConfigError(f"{path}: source.inputs: expected a list of input tables, got none")
        try:
            cls.parameters(config)
        except ValueError as e:
            raise ConfigError(f"{path}: {e}") from None

    @classmethod
    def from_config(
        cls, config: SourceConfig, path: str = "<string>", start: bool = True
    ) -> MatchedKaraboSource:
        cls.check(config, path)
        inputs, match = cls.parameters(config)
        return cls(inputs, **match, queue=config.queue, timeout=config.timeout, start=start)


def with_inputs(config: PipelineConfig, inputs: list[dict[str, Any]]) -> PipelineConfig:
    """A copy of ``config`` reading from ``inputs`` (its ``match`` settings kept)."""
    options = {**dict(config.source.options), "inputs": [dict(i) for i in inputs]}
    return config.with_source(type="karabo_matched", options=MappingProxyType(options))
