"""Sinks: where results go (console, HDF5, dashboard), each reading the `Hub` in its own thread."""

from __future__ import annotations

import importlib
from typing import Any

from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub, Snapshot

__all__ = ["Hub", "Snapshot", "Sink", "make_sink", "open_results", "SINK_TYPES"]


def __getattr__(name: str) -> Any:
    if name == "open_results":  # imports h5py and the pipeline: only when asked for
        from beamstream.sinks.results import open_results

        return open_results
    raise AttributeError(name)


#: sink type names usable in ``[[sinks]]`` tables
SINK_TYPES = {
    "console": "beamstream.sinks.console:ConsoleSink",
    "hdf5": "beamstream.sinks.hdf5:HDF5Sink",
    "raw": "beamstream.sinks.recorder:RawRecorder",
    "dashboard": "beamstream.sinks.dashboard:DashboardSink",
}


def make_sink(type_name: str, params: dict[str, Any]) -> Sink:
    """Build a sink from its config table; ValueError for unknown types or parameters."""
    path = SINK_TYPES.get(type_name, type_name if ":" in type_name else None)
    if path is None:
        raise ValueError(f"unknown sink type {type_name!r}; known: {', '.join(SINK_TYPES)}")
    module, _, cls_name = path.partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    try:
        return cls(**params)
    except TypeError as e:
        raise ValueError(f"sink {type_name!r}: {e}") from None
