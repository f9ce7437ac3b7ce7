"""Sinks: where results go (console, HDF5, dashboard), each reading the `Hub` in its own thread.

Sink types are plug-ins of the entry-point group ``beamstream.sinks`` (`beamstream.plugins`).
"""

from __future__ import annotations

from typing import Any

from beamstream.plugins import Registry
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub, Snapshot

__all__ = ["Hub", "Snapshot", "Sink", "make_sink", "open_results", "SINKS"]


def __getattr__(name: str) -> Any:
    if name == "open_results":  # imports h5py and the pipeline: only when asked for
        from beamstream.formats.results import open_results

        return open_results
    raise AttributeError(name)


SINKS: Registry[Sink] = Registry("beamstream.sinks", Sink, "sink")


def make_sink(type_name: str, params: dict[str, Any]) -> Sink:
    """Build a sink from its config table; ValueError for unknown types or parameters."""
    cls = SINKS.resolve(type_name)
    try:
        return cls(**params)
    except TypeError as e:
        raise ValueError(f"sink {type_name!r}: {e}") from None
