"""Numba kernels of the attribute built-ins (pure functions over arrays, no I/O)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["finite_sum"]


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _plain_sum(a: np.ndarray) -> float:
    s = 0.0
    for i in range(a.size):
        s += a[i]
    return s


@numba.njit(nogil=True, cache=True, fastmath=False)
def _finite_sum(a: np.ndarray) -> float:
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    n = a.size
    m = n - n % 4
    for i in range(0, m, 4):
        v0, v1, v2, v3 = a[i], a[i + 1], a[i + 2], a[i + 3]
        if np.isfinite(v0):
            s0 += v0
        if np.isfinite(v1):
            s1 += v1
        if np.isfinite(v2):
            s2 += v2
        if np.isfinite(v3):
            s3 += v3
    for i in range(m, n):
        if np.isfinite(a[i]):
            s0 += a[i]
    return (s0 + s1) + (s2 + s3)


def finite_sum(a: np.ndarray) -> float:
    """Sum of the finite values of ``a`` in float64, without temporaries.

    A vectorized plain sum first; only when it is not finite (a NaN or inf is present) the
    values are summed again, skipping the non-finite ones.
    """
    a = np.asarray(a)
    if a.dtype.kind not in "f":
        return float(a.sum(dtype=np.float64))
    flat = np.ascontiguousarray(a).reshape(-1)
    s = _plain_sum(flat)
    if np.isfinite(s):
        return float(s)
    return float(_finite_sum(flat))


@numba.njit(nogil=True, cache=True)
def masked_row_means(
    data: np.ndarray, sel: np.ndarray, bsel: np.ndarray, use_b: bool
) -> np.ndarray:
    """Per row of ``data (rows, n)``: mean of the finite values where ``sel`` minus (if
    ``use_b``) the mean of the finite values where ``bsel``; NaN where a mean has no values."""
    rows, n = data.shape
    out = np.empty(rows)
    for r in range(rows):
        s = 0.0
        c = 0
        sb = 0.0
        cb = 0
        for j in range(n):
            v = data[r, j]
            if not np.isfinite(v):
                continue
            if sel[j]:
                s += v
                c += 1
            if use_b and bsel[j]:
                sb += v
                cb += 1
        m = s / c if c > 0 else np.nan
        if use_b:
            m = m - (sb / cb if cb > 0 else np.nan)
        out[r] = m
    return out
