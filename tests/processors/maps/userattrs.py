"""User attribute functions for the tests, loaded by dotted path (``tests.processors.maps...``)."""

from __future__ import annotations

import numpy as np


def peak_q(data: np.ndarray, q_range: list[float], *, q: np.ndarray) -> float:
    """The q of the largest I(q) within ``q_range`` (first argument: the data, as in lixtools)."""
    sel = (q >= q_range[0]) & (q <= q_range[1]) & np.isfinite(data)
    return float(q[sel][np.argmax(data[sel])])


def scaled_max(data: np.ndarray, scale: float = 1.0) -> float:
    """``scale * max(data)``: a function without coordinates."""
    return scale * float(np.nanmax(data))


def fails_on_bright(data: np.ndarray, limit: float) -> float:
    """Raises for frames whose maximum exceeds ``limit`` (a user bug in some frames)."""
    m = float(np.nanmax(data))
    if m > limit:
        raise RuntimeError(f"too bright: {m}")
    return m


def profile(data: np.ndarray) -> np.ndarray:
    """Returns an array: not a scalar attribute."""
    return np.asarray(data)[:3]


def text(data: np.ndarray) -> str:
    """Returns a string: not a number."""
    return "x"
