"""`[source] type = "dectris"`: the source's own options, checked with located errors.

Keys (besides the common ``endpoint``, ``detector``, ``queue``, ``policy``, ``timeout``):
``stream`` (``"v2"`` | ``"v1"``), ``frames_per_train``, ``threads``, ``series_epoch``,
``flush_timeout``, ``hwm``, ``limits`` (table of `DectrisLimits` fields), ``positions`` (table:
``from = "user_data"`` with ``motors``, ``from = "table"`` with ``path``, or ``from = "bluesky"``
with ``endpoint``, ``motors``, ``stream``, ``images_per_event``), ``positions_source``,
``record`` (path prefix: every series recorded to NXmx files as received), ``relay_host``
(with Dask workers: the interface the driver's relay binds, default ``127.0.0.1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from beamstream.config import ConfigError, SourceConfig

from .limits import DectrisLimits
from .positions import PositionLookup, TablePositions, UserDataPositions

__all__ = ["source_kwargs", "OPTIONS", "DEFAULT_NAME"]

DEFAULT_NAME = "eiger"
OPTIONS = (
    "stream", "frames_per_train", "threads", "series_epoch", "flush_timeout", "hwm", "limits",
    "positions", "positions_source", "record", "relay_host",
)  # fmt: skip


class _Fail:
    def __init__(self, path: str):
        self.path = path

    def __call__(self, key: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(f"{self.path}: source.{key}: expected {expected}, got {got!r}")


def _positive_int(fail: _Fail, key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise fail(key, "a positive integer", v)
    return v


def _positions(fail: _Fail, raw: Any) -> PositionLookup | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise fail("positions", "a table with from = 'user_data' | 'table' | 'bluesky'", raw)
    kind = raw.get("from")
    motors = raw.get("motors")
    if kind in ("user_data", "bluesky") and (
        not isinstance(motors, list) or not motors or not all(isinstance(m, str) for m in motors)
    ):
        raise fail("positions.motors", "a non-empty list of names", motors)
    if kind == "user_data":
        return UserDataPositions(motors)
    if kind == "table":
        path = raw.get("path")
        if not isinstance(path, str):
            raise fail("positions.path", "a CSV or NPY file", path)
        try:
            return TablePositions(path)
        except ValueError as e:
            raise ConfigError(f"{fail.path}: source.{e}") from None
    if kind == "bluesky":
        from .bluesky import BlueskyPositions

        endpoint = raw.get("endpoint")
        if not isinstance(endpoint, str):
            raise fail("positions.endpoint", "a ZeroMQ endpoint (tcp://host:port)", endpoint)
        per = _positive_int(fail, "positions.images_per_event", raw.get("images_per_event", 1))
        stream = raw.get("stream", "primary")
        if not isinstance(stream, str):
            raise fail("positions.stream", "a descriptor name", stream)
        wait = raw.get("wait", 2.0)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
            raise fail("positions.wait", "seconds >= 0", wait)
        return BlueskyPositions(
            endpoint, motors, stream=stream, images_per_event=per, wait=float(wait)
        )
    raise fail("positions.from", "'user_data', 'table' or 'bluesky'", kind)


def source_kwargs(config: SourceConfig, path: str = "<string>") -> dict[str, Any]:
    """Keyword arguments of `DectrisSource` from a ``[source]`` table (ConfigError if bad)."""
    fail = _Fail(path)
    opts = dict(config.options)
    for key in opts:
        if key not in OPTIONS:
            raise fail(key, "one of the dectris options " + ", ".join(OPTIONS), "unknown key")
    if config.socket.upper() not in ("PULL", "REQ"):  # REQ: the default when not given
        raise fail("socket", "'PULL' (the detector PUSHes)", config.socket)
    stream = opts.get("stream", "v2")
    if stream not in ("v2", "v1"):
        raise fail("stream", "'v2' (CBOR) or 'v1' (legacy)", stream)
    kw: dict[str, Any] = {
        "stream": stream,
        "name": config.detector or DEFAULT_NAME,
        "queue": config.queue,
        "policy": config.policy,
        "frames_per_train": _positive_int(
            fail, "frames_per_train", opts.get("frames_per_train", 1)
        ),
        "threads": _positive_int(fail, "threads", opts.get("threads", 2)),
        "hwm": _positive_int(fail, "hwm", opts.get("hwm", 1000)),
    }
    epoch = opts.get("series_epoch", False)
    if not isinstance(epoch, bool):
        raise fail("series_epoch", "true or false", epoch)
    kw["series_epoch"] = epoch
    flush = opts.get("flush_timeout", 1.0)
    if isinstance(flush, bool) or not isinstance(flush, int | float) or flush <= 0:
        raise fail("flush_timeout", "a positive number of seconds", flush)
    kw["flush_timeout"] = float(flush)
    limits = opts.get("limits", {})
    if not isinstance(limits, Mapping):
        raise fail("limits", "a table", limits)
    try:
        kw["limits"] = DectrisLimits.from_mapping(dict(limits))
    except ValueError as e:
        raise ConfigError(f"{path}: source.{e}") from None
    kw["positions"] = _positions(fail, opts.get("positions"))
    src = opts.get("positions_source", "positions")
    if not isinstance(src, str) or not src:
        raise fail("positions_source", "a source name", src)
    kw["positions_source"] = src
    record = opts.get("record")
    if record is not None and (not isinstance(record, str) or not record):
        raise fail("record", "a path prefix for the NXmx files", record)
    kw["record"] = record
    host = opts.get("relay_host", "127.0.0.1")
    if not isinstance(host, str) or not host or "/" in host:
        raise fail("relay_host", "an interface name or address the Dask workers reach", host)
    return kw
