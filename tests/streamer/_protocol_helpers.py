"""Helpers shared by the protocol tests: the dtypes and plain values to try, sample arrays
and an exact array comparison."""

from __future__ import annotations

import numpy as np

NUMERIC_DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    ">u2",  # explicit big-endian: the dtype string travels as is
    ">f8",
]

PLAIN = {
    "int": -(2**62),
    "uint": 2**64 - 1,
    "float": 3.25,
    "str": "ünïcode ✓",
    "bytes": b"\x00\xff raw",
    "none": None,
    "true": True,
    "list": [1, "two", 3.0, [4, [5]]],
    "nested": {"a": {"b": [1, 2, {"c": "d"}]}, "empty": {}},
    "empty_list": [],
}


def _sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Deterministic non-trivial values of ``dtype`` and ``shape``."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        values = rng.integers(0, 2, size=shape)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        values = rng.integers(max(info.min, -1000), min(info.max, 60000), size=shape, endpoint=True)
    elif dt.kind == "c":
        values = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    else:
        values = rng.normal(scale=100, size=shape)
    return np.asarray(values).astype(dt)  # asarray: shape () stays a 0-d array


def _assert_same_array(got: np.ndarray, want: np.ndarray, native: bool = True) -> None:
    """Same values and shape; ``native``: in native byte order (as beamstream decodes)."""
    assert isinstance(got, np.ndarray)
    if native:
        assert got.dtype == want.dtype.newbyteorder("=") and got.dtype.isnative
    else:
        assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
