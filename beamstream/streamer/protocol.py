"""Karabo Bridge protocol: encode trains (2.2) and decode them (2.2 and 1.0).

Protocol 2.2 (see DESIGN.md section 3): one multipart message per train; per source a msgpack
header ``{source, content: "msgpack", metadata}`` and a msgpack map of the plain values, then per
array a header ``{source, content: "array", path, dtype, shape[, dims]}`` and the raw C-order
buffer. ``dims`` is beamstream's backward-compatible extension (old clients ignore it). Protocol
1.0: a single msgpack frame ``{source: {key: value, "metadata": {...}}}`` with msgpack-numpy style
arrays, decoded here without depending on msgpack-numpy.

Decoding never trusts the sender: every msgpack call has explicit size limits, and every problem
raises `MalformedMessage` with a short, countable ``reason``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from beamstream.streamer.train import Train

__all__ = ["encode_train", "decode_train", "MalformedMessage", "DecodeLimits", "PROTOCOLS"]

PROTOCOLS = ("2.2", "1.0")
#: train ids are unsigned 64-bit integers
MAX_TRAIN_ID = (1 << 64) - 1
#: dtype kinds accepted on the wire: bool, signed, unsigned, float, complex
_ARRAY_KINDS = "biufc"


class MalformedMessage(ValueError):
    """A message that is not a valid Karabo Bridge train; ``reason`` is a short counter name."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds applied while decoding untrusted messages."""

    max_header_bytes: int = 1 << 20  # one header frame
    max_plain_bytes: int = 256 << 20  # one msgpack payload of plain values
    max_container_len: int = 1 << 20  # elements of one msgpack array or map
    max_legacy_bytes: int = 1 << 31  # a protocol 1.0 frame (arrays are inside it)
    max_ndim: int = 32
    #: any one frame; receivers set ZeroMQ's maximum message size to it, so a larger frame is
    #: refused by ZeroMQ before it is received (the peer is disconnected and reconnects)
    max_frame_bytes: int = 1 << 30


DEFAULT_LIMITS = DecodeLimits()


# --------------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------------
def _plain_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} in a Karabo Bridge message")


_PACKER_ARGS = {"use_bin_type": True, "default": _plain_default}


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, **_PACKER_ARGS)


def train_metadata(train: Train, source: str) -> dict[str, Any]:
    """The metadata map of one source: the train's own, completed with the train id and time."""
    meta = dict(train.meta.get(source, {}))
    meta.setdefault("source", source)
    meta["timestamp.tid"] = int(train.train_id)
    if train.timestamp is not None and "timestamp" not in meta:
        ts = float(train.timestamp)
        meta["timestamp"] = ts
        # as karabo_bridge.serializer.timestamp(): the decimal digits of the float, 18 of frac
        sec, dot, frac = repr(ts).partition(".")
        if not dot or not sec.isdigit() or not frac.isdigit():  # 1e+20, -1.5, nan, ...
            whole, part = divmod(ts, 1.0) if math.isfinite(ts) else (0.0, 0.0)
            sec, frac = str(int(whole)), f"{round(part * 1e18):018d}"
        meta["timestamp.sec"] = sec
        meta["timestamp.frac"] = frac.ljust(18, "0")[:18]
    return meta


def encode_train(train: Train, protocol: str = "2.2") -> list[bytes | memoryview]:
    """Encode a train as the frames of one multipart message (protocol 2.2).

    Arrays are sent zero-copy (a memoryview of a C-contiguous array). Numpy scalars in plain
    values are converted with ``.item()``. Sources are sent in sorted order.
    """
    if protocol != "2.2":
        raise ValueError(f"protocol {protocol!r}: beamstream writes protocol 2.2 only")
    frames: list[bytes | memoryview] = []
    for source in sorted(train.data):
        values = train.data[source]
        plain = {k: v for k, v in values.items() if not isinstance(v, np.ndarray)}
        header = {"source": source, "content": "msgpack", "metadata": train_metadata(train, source)}
        frames += [_pack(header), _pack(plain)]
        dims = train.dims.get(source, {})
        for key, arr in values.items():
            if not isinstance(arr, np.ndarray):
                continue
            if not arr.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
                arr = np.ascontiguousarray(arr)
            head = {
                "source": source,
                "content": "array",
                "path": key,
                "dtype": str(arr.dtype),
                "shape": list(arr.shape),
            }
            if key in dims:
                head["dims"] = list(dims[key])
            frames += [_pack(head), memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else b""]
    return frames


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------
def _buffer(frame: Any) -> memoryview:
    """A memoryview of a received frame (zmq.Frame, bytes, bytearray or memoryview)."""
    buf = getattr(frame, "buffer", None)
    mv = buf if buf is not None else memoryview(frame)
    if mv.ndim != 1 or mv.itemsize != 1:
        if mv.nbytes == 0:  # e.g. a (0, 3) array's .data: cannot be cast
            return memoryview(b"")
        mv = mv.cast("B") if mv.c_contiguous else memoryview(mv.tobytes())
    return mv


def _unpack(buf: Any, max_bytes: int, limits: DecodeLimits, what: str) -> Any:
    n = len(buf)
    if n > max_bytes:
        raise MalformedMessage("oversized", f"{what} of {n} bytes exceeds {max_bytes}")
    try:
        return msgpack.unpackb(
            buf,
            raw=False,
            strict_map_key=False,
            max_bin_len=n,
            max_str_len=n,
            max_array_len=min(limits.max_container_len, n),
            max_map_len=min(limits.max_container_len, n),
            max_ext_len=0,
        )
    except (ValueError, msgpack.exceptions.ExtraData, msgpack.exceptions.UnpackException) as e:
        raise MalformedMessage("not msgpack", f"{what}: {e}") from None
    except Exception as e:  # msgpack raises assorted errors on hostile input
        raise MalformedMessage("not msgpack", f"{what}: {type(e).__name__}: {e}") from None


def check_dtype(name: Any) -> np.dtype:
    """The numpy dtype named on the wire, if it is a plain numeric type."""
    if not isinstance(name, str):
        raise MalformedMessage("unsupported dtype", repr(name))
    try:
        dt = np.dtype(name)
    except (TypeError, ValueError):
        raise MalformedMessage("unsupported dtype", repr(name)) from None
    if dt.kind not in _ARRAY_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise MalformedMessage("unsupported dtype", repr(name))
    return dt


def check_shape(shape: Any, limits: DecodeLimits) -> tuple[int, ...]:
    if not isinstance(shape, list | tuple) or len(shape) > limits.max_ndim:
        raise MalformedMessage("bad shape", repr(shape)[:80])
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise MalformedMessage("bad shape", repr(shape)[:80])
    return tuple(shape)


def make_array(buf: Any, dtype: np.dtype, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A zero-copy array over ``buf``, checking that its size matches dtype and shape.

    Arrays sent in non-native byte order are converted (copied) to native order here, once.
    """
    expected = math.prod(shape) * dtype.itemsize
    if len(buf) != expected:
        raise MalformedMessage(
            "size mismatch", f"{where}: {len(buf)} bytes for {dtype} {list(shape)} ({expected})"
        )
    if expected == 0:
        arr = np.zeros(shape, dtype.newbyteorder("="))
    else:
        arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
        if not dtype.isnative:  # big-endian on the wire: one converted copy (kernels need native)
            arr = arr.astype(dtype.newbyteorder("="))
    arr.flags.writeable = False  # zmq.Frame buffers are writable: never let consumers alter them
    return arr


def timestamp_of(meta: dict[str, Any]) -> float | None:
    """Unix time from a metadata map: ``timestamp``, else ``timestamp.sec`` + ``.frac``."""
    ts = meta.get("timestamp")
    if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
        return float(ts)
    try:
        return int(meta["timestamp.sec"]) + int(meta["timestamp.frac"]) * 1e-18
    except (KeyError, TypeError, ValueError):
        return None


def _finish(data: dict, meta: dict, dims: dict, buffers: list, nbytes: int) -> Train:
    if not data:
        raise MalformedMessage("empty message", "no sources")
    tids = [m.get("timestamp.tid") for m in meta.values() if isinstance(m, dict)]
    tids = [t for t in tids if t is not None]
    if not tids:
        raise MalformedMessage("no train id", "no timestamp.tid in any source's metadata")
    if not all(_is_train_id(t) for t in tids):
        raise MalformedMessage("no train id", f"timestamp.tid {[repr(t)[:40] for t in tids]}")
    tid = min(tids)
    stamps = [timestamp_of(m) for m in meta.values()]
    ts = next((s for s in stamps if s is not None), None)
    return Train(tid, ts, data, meta, dims, buffers, nbytes)


def _is_train_id(t: Any) -> bool:
    """Train ids are unsigned 64-bit integers."""
    return isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= MAX_TRAIN_ID


def decode_train(frames: Sequence[Any], limits: DecodeLimits = DEFAULT_LIMITS) -> Train:
    """Decode one multipart message (protocol 2.2, or 1.0 when it is a single frame).

    Arrays are zero-copy, read-only views on the frames (which the returned train keeps alive).

    Raises
    ------
    MalformedMessage
        With ``reason`` one of: ``empty message``, ``odd frame count``, ``not msgpack``,
        ``bad header``, ``missing source``, ``unknown content``, ``unsupported dtype``,
        ``bad shape``, ``size mismatch``, ``array before msgpack``, ``no train id``,
        ``oversized``.
    """
    n = len(frames)
    if n == 0:
        raise MalformedMessage("empty message", "zero frames")
    bufs = [_buffer(f) for f in frames]
    nbytes = sum(len(b) for b in bufs)
    big = max(len(b) for b in bufs)
    if big > limits.max_frame_bytes:
        raise MalformedMessage(
            "oversized", f"a frame of {big} bytes exceeds {limits.max_frame_bytes}"
        )
    if n == 1:
        return _decode_legacy(bufs[0], limits, nbytes)
    if n % 2:
        raise MalformedMessage("odd frame count", f"{n} frames")
    data: dict[str, dict[str, Any]] = {}
    meta: dict[str, dict[str, Any]] = {}
    dims: dict[str, dict[str, tuple[str, ...]]] = {}
    for i in range(0, n, 2):
        header = _unpack(bufs[i], limits.max_header_bytes, limits, f"header {i // 2}")
        if not isinstance(header, dict):
            raise MalformedMessage("bad header", f"header {i // 2} is a {type(header).__name__}")
        source = header.get("source")
        if not isinstance(source, str):
            raise MalformedMessage("missing source", f"header {i // 2}")
        content = header.get("content")
        if content == "msgpack":
            plain = _unpack(bufs[i + 1], limits.max_plain_bytes, limits, f"{source} values")
            if not isinstance(plain, dict):
                raise MalformedMessage("bad header", f"{source}: values are not a map")
            data.setdefault(source, {}).update(plain)
            md = header.get("metadata")
            if md is None and isinstance(plain.get("metadata"), dict):  # protocol 2.1
                md = data[source].pop("metadata")
            meta[source] = dict(md) if isinstance(md, dict) else {"source": source}
        elif content == "array":
            if source not in data:
                raise MalformedMessage("array before msgpack", source)
            path = header.get("path")
            if not isinstance(path, str):
                raise MalformedMessage("bad header", f"{source}: array without path")
            dt = check_dtype(header.get("dtype"))
            shape = check_shape(header.get("shape"), limits)
            data[source][path] = make_array(bufs[i + 1], dt, shape, f"{source}[{path}]")
            axes = header.get("dims")
            if isinstance(axes, list) and len(axes) == len(shape):
                dims.setdefault(source, {})[path] = tuple(str(a) for a in axes)
        else:
            raise MalformedMessage("unknown content", f"{source}: {str(content)[:40]!r}")
    return _finish(data, meta, dims, list(frames), nbytes)


# -- protocol 1.0 ---------------------------------------------------------------------------
def _nd_get(obj: dict, key: str) -> Any:
    v = obj.get(key.encode())
    return obj.get(key) if v is None else v


def _legacy_array(obj: dict) -> Any:
    """Decode a msgpack-numpy ``{nd, type, kind, shape, data}`` map (bytes or str keys)."""
    if not (b"nd" in obj or "nd" in obj):
        return obj
    typ = _nd_get(obj, "type")
    if isinstance(typ, bytes):
        typ = typ.decode("ascii", "replace")
    dt = check_dtype(typ)
    raw = _nd_get(obj, "data")
    if not isinstance(raw, bytes | bytearray):
        raise MalformedMessage("bad header", "msgpack-numpy object without data")
    if _nd_get(obj, "nd"):
        shape = check_shape(_nd_get(obj, "shape"), DEFAULT_LIMITS)
        return make_array(raw, dt, shape, "msgpack-numpy array")
    return make_array(raw, dt, (), "msgpack-numpy scalar")[()]


def _decode_legacy(buf: memoryview, limits: DecodeLimits, nbytes: int) -> Train:
    n = len(buf)
    if n > limits.max_legacy_bytes:
        raise MalformedMessage("oversized", f"{n} bytes")
    try:
        msg = msgpack.unpackb(
            buf,
            raw=False,
            strict_map_key=False,
            object_hook=_legacy_array,
            max_bin_len=n,
            max_str_len=n,
            max_array_len=min(limits.max_container_len, n),
            max_map_len=min(limits.max_container_len, n),
            max_ext_len=0,
        )
    except MalformedMessage:
        raise
    except Exception as e:
        raise MalformedMessage(
            "not msgpack", f"protocol 1.0 frame: {type(e).__name__}: {e}"
        ) from None
    if not isinstance(msg, dict) or not all(
        isinstance(s, str) and isinstance(v, dict) for s, v in msg.items()
    ):
        raise MalformedMessage("bad header", "protocol 1.0 frame is not {source: {key: value}}")
    data, meta = {}, {}
    for source, values in msg.items():
        values = dict(values)
        md = values.pop("metadata", None)
        meta[source] = dict(md) if isinstance(md, dict) else {"source": source}
        data[source] = values
    return _finish(data, meta, {}, [], nbytes)


def now_metadata(train_id: int, source: str, t: float | None = None) -> dict[str, Any]:
    """A metadata map for a source with the current (or given) wall-clock time."""
    return train_metadata(Train(train_id, time.time() if t is None else t), source)
