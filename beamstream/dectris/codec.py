"""Compression tag 56500 payloads: ``bslz4`` and ``lz4`` in HDF5-filter framing.

Decompression uses the DECTRIS reference library (`dectris.compression`, which releases the GIL);
compression (simulator, replay, tests) uses the `bitshuffle` library for ``bslz4`` and the HDF5 LZ4
filter of `hdf5plugin` for ``lz4``. Only the 12-byte framing header (uint64 big-endian
uncompressed size, uint32 big-endian block size in bytes) is read here, to check the declared size
against the limits *before* anything is allocated.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ALGORITHMS",
    "CodecError",
    "Compressed",
    "declared_size",
    "decompress",
    "compress",
]

ALGORITHMS = ("bslz4", "lz4")
_HEADER = struct.Struct(">QI")


class CodecError(ValueError):
    """A compressed block that cannot be decoded; ``reason`` is a short counter name."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Compressed:
    """The content of a tag 56500: ``[algorithm, modifier, bytes]`` (not yet decompressed).

    ``modifier`` is the element size for ``bslz4`` (1, 2 or 4) and 0 for ``lz4``.
    """

    algorithm: str
    modifier: int
    data: bytes

    @property
    def nbytes(self) -> int:
        return len(self.data)


def declared_size(data: bytes) -> int:
    """The uncompressed size in bytes declared by a framing header."""
    if len(data) < _HEADER.size:
        raise CodecError("truncated_compressed", f"{len(data)} bytes, header needs 12")
    size, block = _HEADER.unpack_from(data)
    if block == 0 and size:
        raise CodecError("bad_compressed_header", "block size 0")
    return int(size)


def decompress(block: Compressed, expected_bytes: int) -> bytes:
    """Decompress ``block`` whose content must be exactly ``expected_bytes`` long.

    Raises
    ------
    CodecError
        ``size_mismatch`` when the header declares another size than the array needs (checked
        before decompressing, so a lying header never allocates), ``decompress_failed`` when
        the library rejects the stream (truncated or corrupt), ``bad_algorithm``.
    """
    from dectris.compression import decompress as _decompress

    size = declared_size(block.data)
    if size != expected_bytes:
        raise CodecError(
            "size_mismatch", f"header declares {size} bytes, array needs {expected_bytes}"
        )
    if block.algorithm == "bslz4":
        if block.modifier not in (1, 2, 4, 8):
            raise CodecError("bad_elem_size", f"bslz4 element size {block.modifier!r}")
        kwargs = {"elem_size": int(block.modifier)}
    elif block.algorithm == "lz4":
        kwargs = {}
    else:
        raise CodecError("bad_algorithm", repr(block.algorithm))
    try:
        out = _decompress(block.data, block.algorithm, **kwargs)
    except (RuntimeError, ValueError) as e:
        raise CodecError("decompress_failed", str(e)) from None
    if len(out) != expected_bytes:
        raise CodecError(
            "size_mismatch", f"decompressed {len(out)} bytes, expected {expected_bytes}"
        )
    return out


def compress(array: np.ndarray, algorithm: str) -> Compressed:
    """Compress a C-contiguous array as a tag-56500 payload (HDF5-filter framing).

    ``bslz4`` uses `bitshuffle.compress_lz4` with its default block (8192 bytes / element size)
    and prepends the framing header; ``lz4`` runs the HDF5 LZ4 filter of `hdf5plugin`.
    """
    array = np.ascontiguousarray(array)
    if algorithm == "bslz4":
        import bitshuffle

        body = bitshuffle.compress_lz4(array.reshape(-1), 0)
        elems = _bshuf_block(array.dtype.itemsize)
        header = _HEADER.pack(array.nbytes, elems * array.dtype.itemsize)
        return Compressed("bslz4", array.dtype.itemsize, header + body.tobytes())
    if algorithm == "lz4":
        return Compressed("lz4", 0, _hdf5_filter_chunk(array))
    raise ValueError(f"compression: expected one of {', '.join(ALGORITHMS)}, got {algorithm!r}")


def _bshuf_block(itemsize: int) -> int:
    """bitshuffle's default block size in elements (8192 bytes, a multiple of 8, >= 128)."""
    n = max(8192 // itemsize, 128)
    return n - n % 8


def _hdf5_filter_chunk(array: np.ndarray) -> bytes:
    """One chunk written through the HDF5 LZ4 filter in an in-memory file, read back raw."""
    import h5py
    import hdf5plugin

    with h5py.File("lz4.h5", "w", driver="core", backing_store=False) as f:
        d = f.create_dataset(
            "x", data=array.reshape(1, -1), chunks=(1, array.size), **hdf5plugin.LZ4()
        )
        mask, chunk = d.id.read_direct_chunk((0, 0))
    if mask:  # HDF5 skipped the filter (content did not compress)
        raise ValueError("lz4: the HDF5 filter stored this array uncompressed")
    return bytes(chunk)
