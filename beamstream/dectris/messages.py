"""The three messages of a DECTRIS series (`SeriesStart`, `Image`, `SeriesEnd`) from V2 maps.

Only the fields beamstream uses are checked; a missing or mistyped one raises `MalformedMessage`
with the reason ``missing_key`` / ``bad_value`` and the key in the detail. Everything else of the
start message is kept in `SeriesStart.header` (plain values, for provenance).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arrays import LazyArray, TypedArray
from .limits import DectrisLimits, MalformedMessage

__all__ = ["SeriesStart", "Image", "SeriesEnd", "parse_v2", "GEOMETRY_KEYS"]

#: start-message fields that describe the geometry and beam (plain numbers or lists)
GEOMETRY_KEYS = (
    "beam_center_x", "beam_center_y", "pixel_size_x", "pixel_size_y", "detector_translation",
    "detector_distance", "incident_energy", "incident_wavelength", "image_size_x", "image_size_y",
)  # fmt: skip


@dataclass
class SeriesStart:
    """What the start message says about a series.

    ``pixel_mask`` and ``flatfield`` map channel -> array (materialized, native byte order);
    ``header`` keeps every plain (non-array) field; ``arm_time`` is Unix seconds or None.
    """

    series_id: int
    unique_id: str
    channels: tuple[str, ...]
    image_dtype: str | None = None
    image_size: tuple[int, int] | None = None  # (height, width)
    number_of_images: int | None = None
    arm_time: float | None = None
    pixel_mask: dict[str, np.ndarray] = field(default_factory=dict)
    flatfield: dict[str, np.ndarray] = field(default_factory=dict)
    user_data: Any = None
    header: dict[str, Any] = field(default_factory=dict)
    raw: bytes | list[bytes] | None = field(default=None, repr=False)  # as received

    def geometry_fields(self) -> dict[str, Any]:
        """The geometry and beam fields present in the header."""
        return {k: self.header[k] for k in GEOMETRY_KEYS if k in self.header}


@dataclass
class Image:
    """One image: every channel's (still compressed) array, its ids, times and user data."""

    series_id: int
    unique_id: str
    image_id: int
    data: dict[str, LazyArray]
    start_time: float | None = None  # seconds after the series' arm date
    stop_time: float | None = None
    real_time: float | None = None
    user_data: Any = None
    wire_bytes: int = 0


@dataclass
class SeriesEnd:
    series_id: int
    unique_id: str


def _require(msg: dict, key: str, typ: type | tuple[type, ...], what: str) -> Any:
    if key not in msg:
        raise MalformedMessage("missing_key", f"{what} message has no {key!r}")
    v = msg[key]
    if isinstance(v, bool) or not isinstance(v, typ):
        raise MalformedMessage("bad_value", f"{what}.{key}: {type(v).__name__} {v!r:.80}")
    return v


def _ids(msg: dict, what: str) -> tuple[int, str]:
    sid = _require(msg, "series_id", int, what)
    uid = msg.get("series_unique_id", "")
    return sid, uid if isinstance(uid, str) else str(uid)


def _rational(msg: dict, key: str) -> float | None:
    v = msg.get(key)
    if v is None:
        return None
    if (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        and v[1] > 0
    ):
        return v[0] / v[1]
    raise MalformedMessage("bad_value", f"image.{key}: expected [num, den], got {v!r:.80}")


def _unix(value: Any) -> float | None:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.timestamp()
    if isinstance(value, str):
        try:
            return _unix(_dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _channel_arrays(value: Any, key: str, channels: tuple[str, ...]) -> dict[str, np.ndarray]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedMessage("bad_value", f"start.{key}: expected a map channel -> array")
    out = {}
    for ch, arr in value.items():
        if not isinstance(arr, LazyArray):
            raise MalformedMessage("bad_value", f"start.{key}.{ch}: expected a MultiDimArray")
        try:
            out[str(ch)] = arr.materialize()
        except ValueError as e:
            raise MalformedMessage(getattr(e, "reason", "bad_value"), f"start.{key}: {e}") from e
    return out


def _plain(v: Any) -> bool:
    if isinstance(v, LazyArray | TypedArray):
        return False
    if isinstance(v, dict):
        return all(_plain(x) for x in v.values())
    if isinstance(v, list):
        return all(_plain(x) for x in v)
    return True


def parse_start(msg: dict) -> SeriesStart:
    sid, uid = _ids(msg, "start")
    channels = msg.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise MalformedMessage("bad_value", f"start.channels: {channels!r:.80}")
    chans = tuple(channels)
    size = None
    if "image_size_x" in msg and "image_size_y" in msg:
        w, h = msg["image_size_x"], msg["image_size_y"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
            raise MalformedMessage("bad_value", f"start.image_size: {w!r} x {h!r}")
        size = (int(h), int(w))
    dtype = msg.get("image_dtype")
    header = {
        k: (v.isoformat() if isinstance(v, _dt.datetime) else v)
        for k, v in msg.items()
        if _plain(v) and k != "user_data"
    }
    n = msg.get("number_of_images")
    return SeriesStart(
        series_id=sid,
        unique_id=uid,
        channels=chans,
        image_dtype=dtype if isinstance(dtype, str) else None,
        image_size=size,
        number_of_images=n if isinstance(n, int) and not isinstance(n, bool) else None,
        arm_time=_unix(msg.get("arm_date")),
        pixel_mask=_channel_arrays(msg.get("pixel_mask"), "pixel_mask", chans),
        flatfield=_channel_arrays(msg.get("flatfield"), "flatfield", chans),
        user_data=msg.get("user_data"),
        header=header,
    )


def parse_image(msg: dict, limits: DectrisLimits) -> Image:
    sid, uid = _ids(msg, "image")
    image_id = _require(msg, "image_id", int, "image")
    data = _require(msg, "data", dict, "image")
    if not data:
        raise MalformedMessage("bad_value", "image.data is empty")
    if len(data) > limits.max_channels:
        raise MalformedMessage("too_large", f"{len(data)} channels > {limits.max_channels}")
    for ch, arr in data.items():
        if not isinstance(arr, LazyArray):
            raise MalformedMessage("bad_value", f"image.data.{ch}: expected a MultiDimArray")
    return Image(
        series_id=sid,
        unique_id=uid,
        image_id=image_id,
        data={str(k): v for k, v in data.items()},
        start_time=_rational(msg, "start_time"),
        stop_time=_rational(msg, "stop_time"),
        real_time=_rational(msg, "real_time"),
        user_data=msg.get("user_data"),
        wire_bytes=sum(a.wire_bytes for a in data.values()),
    )


def parse_v2(msg: dict, limits: DectrisLimits) -> SeriesStart | Image | SeriesEnd:
    """The message object of a decoded V2 map (by its ``type``)."""
    kind = msg.get("type")
    if kind == "image":
        return parse_image(msg, limits)
    if kind == "start":
        return parse_start(msg)
    if kind == "end":
        return SeriesEnd(*_ids(msg, "end"))
    raise MalformedMessage("unknown_type", f"message type {kind!r:.40}")
