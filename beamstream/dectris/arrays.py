"""Decoded arrays of the DECTRIS stream, still compressed until `LazyArray.materialize`.

The receive thread only parses messages: an image's pixels stay as they arrived (a byte string or
a tag-56500 `Compressed` block) in a `LazyArray` whose shape, dtype and declared sizes are already
checked against the limits. Decompression happens later, in a pool of threads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .codec import CodecError, Compressed, declared_size, decompress
from .limits import DectrisLimits, MalformedMessage

__all__ = ["LazyArray", "TypedArray", "TYPED_ARRAY_TAGS", "make_lazy_array"]

#: RFC 8746 typed-array tags -> numpy dtype strings (tag 76 is reserved)
TYPED_ARRAY_TAGS: dict[int, str] = {
    64: "u1", 65: ">u2", 66: ">u4", 67: ">u8", 68: "u1", 69: "<u2", 70: "<u4", 71: "<u8",
    72: "i1", 73: ">i2", 74: ">i4", 75: ">i8", 77: "<i2", 78: "<i4", 79: "<i8",
    80: ">f2", 81: ">f4", 82: ">f8", 84: "<f2", 85: "<f4", 86: "<f8",
}  # fmt: skip


@dataclass(frozen=True)
class TypedArray:
    """A typed array (RFC 8746): its dtype and payload (bytes, or a `Compressed` block)."""

    dtype: np.dtype
    payload: bytes | Compressed

    @property
    def nbytes(self) -> int:
        """Uncompressed size in bytes (declared by the compression header when compressed)."""
        if isinstance(self.payload, Compressed):
            return declared_size(self.payload.data)
        return len(self.payload)

    def materialize(self) -> np.ndarray:
        """A 1-D array (decompressed)."""
        return LazyArray(
            (self.nbytes // self.dtype.itemsize,), self.dtype, "C", self.payload
        ).materialize()


@dataclass(frozen=True)
class LazyArray:
    """A MultiDimArray (tag 40 row-major or 1040 column-major), not yet decompressed."""

    shape: tuple[int, ...]
    dtype: np.dtype
    order: str
    payload: bytes | Compressed

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def compressed(self) -> bool:
        return isinstance(self.payload, Compressed)

    @property
    def wire_bytes(self) -> int:
        """Bytes as received (compressed size)."""
        p = self.payload
        return p.nbytes if isinstance(p, Compressed) else len(p)

    def materialize(self) -> np.ndarray:
        """The array in native byte order (read-only when no conversion was needed).

        Raises
        ------
        CodecError
            When the compressed block cannot be decoded to exactly `nbytes` bytes.
        """
        raw = self.payload
        if isinstance(raw, Compressed):
            if raw.algorithm == "bslz4" and raw.modifier != self.dtype.itemsize:
                raise CodecError(
                    "bad_elem_size",
                    f"bslz4 element size {raw.modifier}, dtype {self.dtype} has "
                    f"{self.dtype.itemsize}",
                )
            raw = decompress(raw, self.nbytes)
        arr = np.frombuffer(raw, dtype=self.dtype).reshape(self.shape, order=self.order)
        if not self.dtype.isnative:
            arr = arr.astype(self.dtype.newbyteorder("="))
        return arr


def make_lazy_array(dims: object, typed: object, order: str, limits: DectrisLimits) -> LazyArray:
    """Check a MultiDimArray's dims and payload against the limits; a `LazyArray`."""
    if not isinstance(typed, TypedArray):
        raise MalformedMessage("bad_array", "MultiDimArray without a typed array")
    if not isinstance(dims, list | tuple) or not dims:
        raise MalformedMessage("bad_array", f"dims {dims!r}")
    if len(dims) > limits.max_ndim:
        raise MalformedMessage("too_large", f"{len(dims)} dims > max_ndim {limits.max_ndim}")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise MalformedMessage("bad_array", f"dims {dims!r}")
    shape = tuple(int(d) for d in dims)
    need = math.prod(shape) * typed.dtype.itemsize
    if need > limits.max_array_bytes:
        raise MalformedMessage(
            "too_large", f"array {shape} {typed.dtype}: {need} bytes > {limits.max_array_bytes}"
        )
    try:
        have = typed.nbytes
    except CodecError as e:
        raise MalformedMessage(e.reason, str(e)) from None
    if have > limits.max_array_bytes:
        raise MalformedMessage("too_large", f"declared uncompressed size {have} bytes")
    if have != need:
        raise MalformedMessage(
            "size_mismatch", f"array {shape} {typed.dtype} needs {need} bytes, payload has {have}"
        )
    return LazyArray(shape, typed.dtype, order, typed.payload)
