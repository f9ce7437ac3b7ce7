"""Encoding DECTRIS stream messages (simulator, replay): V2 CBOR maps and legacy v1 multiparts.

V2 arrays are MultiDimArrays (tag 40, row-major) over little-endian typed arrays (64 uint8, 69
uint16, 70 uint32, 85 float32), optionally wrapped in the compression tag 56500 (`codec.compress`).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from typing import Any

import cbor2
import numpy as np

from .codec import Compressed, compress
from .legacy import V1_ENCODINGS

__all__ = [
    "TAG_OF_DTYPE",
    "encode_v2",
    "multidim",
    "start_v2",
    "image_v2",
    "end_v2",
    "start_v1",
    "image_v1",
    "end_v1",
    "TIME_BASE",
]

TAG_OF_DTYPE = {"uint8": 64, "uint16": 69, "uint32": 70, "float32": 85}
#: denominator of the image times (rationals of seconds)
TIME_BASE = 1_000_000_000


def encode_v2(msg: Mapping[str, Any]) -> bytes:
    """A V2 message: the map behind the self-describe tag 55799."""
    return cbor2.dumps(cbor2.CBORTag(55799, dict(msg)), datetime_as_timestamp=False)


def multidim(array: np.ndarray, compression: str | None = None) -> cbor2.CBORTag:
    """Tag 40 ``[dims, typed array]`` of ``array`` (compressed with ``bslz4`` / ``lz4``)."""
    a = np.ascontiguousarray(array)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    tag = TAG_OF_DTYPE[a.dtype.name]
    if compression in (None, "none"):
        payload: Any = a.tobytes()
    else:
        block: Compressed = compress(a, compression)
        payload = cbor2.CBORTag(56500, [block.algorithm, block.modifier, block.data])
    return cbor2.CBORTag(40, [list(a.shape), cbor2.CBORTag(tag, payload)])


def _rational(seconds: float) -> list[int]:
    return [int(round(seconds * TIME_BASE)), TIME_BASE]


def start_v2(
    series_id: int,
    unique_id: str,
    *,
    channels: tuple[str, ...],
    fields: Mapping[str, Any],
    arm_date: _dt.datetime,
    pixel_mask: Mapping[str, np.ndarray] | None = None,
    flatfield: Mapping[str, np.ndarray] | None = None,
    user_data: Any = None,
) -> bytes:
    """The start message; ``fields`` holds the plain header values (geometry, timing, ...)."""
    msg: dict[str, Any] = {
        "type": "start",
        "series_id": series_id,
        "series_unique_id": unique_id,
        "arm_date": arm_date,
        "channels": list(channels),
        **fields,
    }
    if pixel_mask:
        msg["pixel_mask_enabled"] = True
        msg["pixel_mask"] = {c: multidim(m.astype(np.uint32)) for c, m in pixel_mask.items()}
    if flatfield:
        msg["flatfield_enabled"] = True
        msg["flatfield"] = {c: multidim(f.astype(np.float32)) for c, f in flatfield.items()}
    if user_data is not None:
        msg["user_data"] = user_data
    return encode_v2(msg)


def image_v2(
    series_id: int,
    unique_id: str,
    image_id: int,
    data: Mapping[str, np.ndarray],
    *,
    compression: str | None,
    start_time: float,
    frame_time: float,
    user_data: Any = None,
) -> bytes:
    """One image message of all channels (times in seconds after the arm date)."""
    msg = {
        "type": "image",
        "series_id": series_id,
        "series_unique_id": unique_id,
        "image_id": image_id,
        "start_time": _rational(start_time),
        "stop_time": _rational(start_time + frame_time),
        "real_time": _rational(frame_time),
        "data": {c: multidim(a, compression) for c, a in data.items()},
    }
    if user_data is not None:
        msg["user_data"] = user_data
    return encode_v2(msg)


def end_v2(series_id: int, unique_id: str) -> bytes:
    return encode_v2({"type": "end", "series_id": series_id, "series_unique_id": unique_id})


# -- legacy v1 -------------------------------------------------------------------------------
_V1_NAMES = {
    "pixel_size_x": "x_pixel_size",
    "pixel_size_y": "y_pixel_size",
    "incident_wavelength": "wavelength",
    "incident_energy": "photon_energy",
    "image_size_x": "x_pixels_in_detector",
    "image_size_y": "y_pixels_in_detector",
    "number_of_images": "nimages",
}


def _jb(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _v1_encoding(compression: str | None, itemsize: int) -> str:
    if compression in (None, "none"):
        return "<"
    if compression == "lz4":
        return "lz4<"
    return {v: k for k, v in V1_ENCODINGS.items() if v[0] == "bslz4"}[("bslz4", itemsize)]


def _v1_blob(htype: str, array: np.ndarray, compression: str | None) -> list[bytes]:
    a = np.ascontiguousarray(array)
    enc = _v1_encoding(compression, a.dtype.itemsize)
    blob = a.tobytes() if enc == "<" else compress(a, compression).data
    desc = {"htype": htype, "shape": [a.shape[1], a.shape[0]], "type": a.dtype.name}
    return [_jb({**desc, "encoding": enc, "size": len(blob)}), blob]


def start_v1(
    series_id: int,
    *,
    fields: Mapping[str, Any],
    arm_date: _dt.datetime,
    pixel_mask: np.ndarray | None = None,
    flatfield: np.ndarray | None = None,
    appendix: Any = None,
) -> list[bytes]:
    """A ``dheader-1.0`` (``basic``, or ``all`` with flatfield and pixel mask)."""
    detail = "all" if pixel_mask is not None or flatfield is not None else "basic"
    head: dict[str, Any] = {"htype": "dheader-1.0", "series": series_id, "header_detail": detail}
    config = {_V1_NAMES.get(k, k): v for k, v in fields.items()}
    config["data_collection_date"] = arm_date.isoformat()
    parts = [_jb(head), _jb(config)]
    if flatfield is not None:
        parts += _v1_blob("dflatfield-1.0", flatfield.astype(np.float32), None)
    if pixel_mask is not None:
        parts += _v1_blob("dpixelmask-1.0", pixel_mask.astype(np.uint32), None)
    if appendix is not None:
        parts.append(_jb(appendix))  # the header appendix: one more part
    return parts


def image_v1(
    series_id: int,
    frame: int,
    array: np.ndarray,
    *,
    compression: str | None,
    start_time: float,
    frame_time: float,
    appendix: Any = None,
) -> list[bytes]:
    """A ``dimage-1.0``: header, ``dimage_d`` descriptor, blob, ``dconfig`` (times in ns)."""
    head: dict[str, Any] = {"htype": "dimage-1.0", "series": series_id, "frame": frame, "hash": ""}
    desc, blob = _v1_blob("dimage_d-1.0", array, compression)
    t0 = int(round(start_time * 1e9))
    dt = int(round(frame_time * 1e9))
    times = {"htype": "dconfig-1.0", "start_time": t0, "stop_time": t0 + dt, "real_time": dt}
    parts = [_jb(head), desc, blob, _jb(times)]
    if appendix is not None:
        parts.append(_jb(appendix))  # the image appendix: a fifth part
    return parts


def end_v1(series_id: int) -> list[bytes]:
    return [_jb({"htype": "dseries_end-1.0", "series": series_id})]
