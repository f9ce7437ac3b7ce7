"""Starting a live run on a DECTRIS source whose geometry comes from the stream."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from beamstream.config import ConfigError, PipelineConfig

from .geometry import needs_stream_geometry, resolve_config
from .source import DectrisSource

__all__ = ["open_with_stream_geometry", "applied_summary"]

log = logging.getLogger(__name__)


def open_with_stream_geometry(
    config: PipelineConfig, timeout: float | None = None
) -> tuple[PipelineConfig, DectrisSource | None, dict[str, Any]]:
    """Open the config's DECTRIS source and, if a processor wants ``geometry = "from-stream"``,
    wait for the first series start and fill it in.

    Returns ``(config, source, applied)``: the resolved config, the open source (None when
    nothing needed the stream) and a JSON-able summary of the applied geometry per processor.

    Raises
    ------
    ConfigError
        When no series started within ``timeout`` (default: ``source.timeout``, else forever)
        or the start message lacks a geometry field.
    """
    if config.source.type != "dectris" or not needs_stream_geometry(config):
        return config, None, {}
    source = DectrisSource.from_config(config.source, config.path)
    wait = timeout if timeout is not None else config.source.timeout
    log.info("waiting for a series start on %s for the geometry", config.source.endpoint)
    start = source.wait_series(wait)
    if start is None:
        source.close()
        raise ConfigError(
            f"{config.path}: processors: geometry = 'from-stream', but no series started on "
            f"{config.source.endpoint} within {wait} s"
        )
    try:
        resolved, applied = resolve_config(config, start)
    except ConfigError:
        source.close()
        raise
    return resolved, source, applied_summary(applied)


def applied_summary(applied: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Plain values only (for the status and the results file's provenance)."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        return v

    return plain(applied)
