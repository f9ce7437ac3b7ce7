"""A DECTRIS source on Dask workers: the driver's `Relay`, the workers' geometry from it."""

from __future__ import annotations

from typing import Any

from beamstream.config import ConfigError, PipelineConfig

from .cbor import decode_cbor
from .fanout import Relay, check_fanout, fetch_start, info_endpoint
from .geometry import needs_stream_geometry, resolve_config
from .legacy import parse_v1
from .limits import DEFAULT_LIMITS
from .live import applied_summary
from .messages import SeriesStart, parse_v2

__all__ = ["start_relay", "worker_config"]


def start_relay(
    config: PipelineConfig, peers: int = 1
) -> tuple[PipelineConfig, Relay, dict[str, Any]]:
    """Start the relay PULLing the config's detector (images held until ``peers`` workers are
    connected); the config the workers use (``endpoint`` the relay's), its geometry filled from
    the first series when it is ``from-stream``."""
    check_fanout(config)
    from .options import source_kwargs

    source_kwargs(config.source, config.path)  # every option checked before anything starts
    opts = config.source.options
    relay = Relay(
        config.source.endpoint,
        stream=opts.get("stream", "v2"),
        host=opts.get("relay_host", "127.0.0.1"),
        peers=peers,
    )
    out = config.with_source(endpoint=relay.push_endpoint)
    applied: dict[str, Any] = {}
    if needs_stream_geometry(config):
        start = relay.wait_series(config.source.timeout)
        if start is None:
            relay.close()
            raise ConfigError(
                f"{config.path}: processors: geometry = 'from-stream', but no series started on "
                f"{config.source.endpoint} within {config.source.timeout} s"
            )
        out, found = resolve_config(out, start)
        applied = applied_summary(found)
    return out, relay, applied


def worker_config(config: PipelineConfig) -> PipelineConfig:
    """A worker's config: a ``from-stream`` geometry filled from the relay's latest series."""
    if config.source.type != "dectris" or not needs_stream_geometry(config):
        return config
    raw = fetch_start(info_endpoint(config.source.endpoint), b"", timeout=30.0)
    if raw is None:
        raise ConfigError(f"{config.path}: no series start from the relay at "
                          f"{info_endpoint(config.source.endpoint)}")  # fmt: skip
    v1 = config.source.options.get("stream", "v2") == "v1"
    start = parse_v1(raw, DEFAULT_LIMITS) if v1 else parse_v2(decode_cbor(raw[0]), DEFAULT_LIMITS)
    if not isinstance(start, SeriesStart):
        raise ConfigError(f"{config.path}: the relay's start message is not a start")
    return resolve_config(config, start)[0]
