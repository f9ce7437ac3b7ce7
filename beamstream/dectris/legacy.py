"""DECTRIS legacy stream (v1): JSON multipart ``dheader`` / ``dimage`` / ``dseries_end``.

Messages become the same `SeriesStart` / `Image` / `SeriesEnd` as V2 ones. The single image of a
v1 series is the channel ``"data"``; its shape arrives width first (``[x, y]``) and is turned into
(height, width). Detector-config keys are renamed to their V2 names (``x_pixel_size`` ->
``pixel_size_x``, ``wavelength`` -> ``incident_wavelength``, ``photon_energy`` ->
``incident_energy``, ``x_pixels_in_detector`` -> ``image_size_x`` ...). Times are integer ns.
The SIMPLON ``header_appendix`` / ``image_appendix`` (the series' and images' ``user_data``) are
read from one further message part (JSON, else text), or from an ``appendix`` key of the first
part.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from .arrays import TypedArray, make_lazy_array
from .codec import Compressed
from .limits import DectrisLimits, MalformedMessage
from .messages import Image, SeriesEnd, SeriesStart, parse_start

__all__ = ["parse_v1", "V1_CHANNEL", "V1_ENCODINGS", "V1_RENAMES"]

V1_CHANNEL = "data"
#: v1 ``encoding`` -> (compression algorithm or None, bslz4 element size)
V1_ENCODINGS: dict[str, tuple[str | None, int]] = {
    "<": (None, 0),
    "lz4<": ("lz4", 0),
    "bs8-lz4<": ("bslz4", 1),
    "bs16-lz4<": ("bslz4", 2),
    "bs32-lz4<": ("bslz4", 4),
}
V1_RENAMES = {
    "x_pixel_size": "pixel_size_x",
    "y_pixel_size": "pixel_size_y",
    "wavelength": "incident_wavelength",
    "photon_energy": "incident_energy",
    "x_pixels_in_detector": "image_size_x",
    "y_pixels_in_detector": "image_size_y",
    "nimages": "number_of_images",
    "data_collection_date": "arm_date",
}
_TYPES = {"uint8": "u1", "uint16": "<u2", "uint32": "<u4", "float32": "<f4"}
_BLOB_KEYS = {"dflatfield-1.0": "flatfield", "dpixelmask-1.0": "pixel_mask"}


def _json(part: bytes, limits: DectrisLimits, what: str) -> dict[str, Any]:
    if len(part) > limits.max_json_bytes:
        raise MalformedMessage("too_large", f"{what}: JSON part of {len(part)} bytes")
    try:
        value = json.loads(bytes(part))
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedMessage("json_invalid", f"{what}: {e}") from None
    if not isinstance(value, dict):
        raise MalformedMessage("json_invalid", f"{what}: not a JSON object")
    return value


def _array(desc: dict, blob: bytes, limits: DectrisLimits, what: str) -> Any:
    shape, typ = desc.get("shape"), desc.get("type")
    if typ not in _TYPES or not isinstance(shape, list) or len(shape) != 2:
        raise MalformedMessage("bad_value", f"{what}: shape {shape!r:.40}, type {typ!r:.20}")
    algorithm, elem = V1_ENCODINGS.get(desc.get("encoding", "<"), ("?", 0))
    if algorithm == "?":
        raise MalformedMessage("bad_algorithm", f"{what}: encoding {desc.get('encoding')!r:.20}")
    payload: bytes | Compressed = bytes(blob)
    if algorithm is not None:
        payload = Compressed(algorithm, elem, payload)
    x, y = shape
    return make_lazy_array([y, x], TypedArray(np.dtype(_TYPES[typ]), payload), "C", limits)


def _start(parts: Sequence[bytes], head: dict, limits: DectrisLimits) -> SeriesStart:
    series = head.get("series")
    config = _json(parts[1], limits, "dheader config") if len(parts) > 1 else {}
    msg: dict[str, Any] = {V1_RENAMES.get(k, k): v for k, v in config.items()}
    msg.update(type="start", series_id=series, series_unique_id=str(series))
    msg["channels"] = [V1_CHANNEL]
    blobs = list(parts[2:])
    if len(blobs) % 2:  # a trailing part: the header appendix
        head = {**head, "appendix": _appendix(blobs.pop(), limits)}
    for i in range(0, len(blobs) - 1, 2):
        desc = _json(blobs[i], limits, "dheader blob descriptor")
        key = _BLOB_KEYS.get(desc.get("htype", ""))
        if key is not None:
            msg[key] = {V1_CHANNEL: _array(desc, blobs[i + 1], limits, f"dheader {key}")}
    if "appendix" in head:
        msg["user_data"] = head["appendix"]
    return parse_start(msg)


def _appendix(part: bytes, limits: DectrisLimits) -> Any:
    """An appendix part: JSON when it parses, else text."""
    if len(part) > limits.max_json_bytes:
        raise MalformedMessage("too_large", f"appendix of {len(part)} bytes")
    try:
        return json.loads(bytes(part))
    except (ValueError, UnicodeDecodeError):
        return bytes(part).decode(errors="replace")


def _ns(v: Any) -> float | None:
    return v / 1e9 if isinstance(v, int | float) and not isinstance(v, bool) else None


def _image(parts: Sequence[bytes], head: dict, limits: DectrisLimits) -> Image:
    if len(parts) < 3:
        raise MalformedMessage("missing_part", f"dimage with {len(parts)} parts, expected 4")
    series, frame = head.get("series"), head.get("frame")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (series, frame)):
        raise MalformedMessage("bad_value", f"dimage series {series!r:.20} frame {frame!r:.20}")
    desc = _json(parts[1], limits, "dimage_d")
    arr = _array(desc, parts[2], limits, "dimage")
    times = _json(parts[3], limits, "dconfig") if len(parts) > 3 else {}
    appendix = _appendix(parts[4], limits) if len(parts) > 4 else head.get("appendix")
    return Image(
        series_id=series,
        unique_id=str(series),
        image_id=frame,
        data={V1_CHANNEL: arr},
        start_time=_ns(times.get("start_time")),
        stop_time=_ns(times.get("stop_time")),
        real_time=_ns(times.get("real_time")),
        user_data=appendix,
        wire_bytes=arr.wire_bytes,
    )


def parse_v1(parts: Sequence[bytes], limits: DectrisLimits) -> SeriesStart | Image | SeriesEnd:
    """The message object of one legacy multipart message."""
    if not parts:
        raise MalformedMessage("missing_part", "empty message")
    head = _json(parts[0], limits, "first part")
    htype = head.get("htype", "")
    if not isinstance(htype, str):
        raise MalformedMessage("unknown_type", f"htype {htype!r:.40}")
    if htype.startswith("dimage-"):
        return _image(parts, head, limits)
    if htype.startswith("dheader-"):
        if not isinstance(head.get("series"), int):
            raise MalformedMessage("bad_value", f"dheader series {head.get('series')!r:.20}")
        return _start(parts, head, limits)
    if htype.startswith("dseries_end-"):
        if not isinstance(head.get("series"), int):
            raise MalformedMessage("bad_value", f"dseries_end series {head.get('series')!r:.20}")
        return SeriesEnd(head["series"], str(head["series"]))
    raise MalformedMessage("unknown_type", f"htype {htype!r:.40}")
