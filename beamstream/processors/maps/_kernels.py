"""Numba kernels of the attribute built-ins (pure functions over arrays, no I/O)."""

from __future__ import annotations

import math

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


@numba.njit(nogil=True, cache=True)
def _pairwise(a: np.ndarray, lo: int, n: int) -> float:
    """``a[lo:lo + n].sum()`` exactly as numpy adds float64 (its pairwise summation), for
    ``n <= 128`` (numpy's block; longer ones split in halves, not done here: no recursion, which
    numba cannot cache)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        m = n - n % 8
        while i < m:
            j = lo + i
            r0 += a[j]
            r1 += a[j + 1]
            r2 += a[j + 2]
            r3 += a[j + 3]
            r4 += a[j + 4]
            r5 += a[j + 5]
            r6 += a[j + 6]
            r7 += a[j + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    return np.nan


@numba.njit(nogil=True, cache=True)
def azimuthal_sums(
    prof: np.ndarray,
    p: np.ndarray,
    cos2p: np.ndarray,
    sin2p: np.ndarray,
    axis: float,
    hermans: bool,
) -> np.ndarray:
    """Per row of ``prof (frames, n_phi <= 128)`` (I(phi) profiles; NaN bins left out):
    ``[sum I, sum I cos 2phi, sum I sin 2phi, P2]`` with the sums as numpy forms them, so the
    values equal those of the per-frame built-ins bit for bit. ``p``: phi in radians;
    ``cos2p``, ``sin2p``: cos and sin of ``2 p`` (numpy's). P2 (Hermans, only if ``hermans``)
    about ``axis`` (radians), or about the measured orientation when ``axis`` is NaN."""
    nf, nphi = prof.shape
    out = np.full((nf, 4), np.nan)
    w = np.empty(nphi)
    wc = np.empty(nphi)
    wsn = np.empty(nphi)
    pk = np.empty(nphi)
    for f in range(nf):
        m = 0
        for j in range(nphi):
            v = prof[f, j]
            if np.isfinite(v):
                w[m] = v
                wc[m] = v * cos2p[j]
                wsn[m] = v * sin2p[j]
                pk[m] = p[j]
                m += 1
        s0 = 0.0 + _pairwise(w, 0, m)
        c = 0.0 + _pairwise(wc, 0, m)
        s = 0.0 + _pairwise(wsn, 0, m)
        out[f, 0] = s0
        out[f, 1] = c
        out[f, 2] = s
        if hermans:
            ref = 0.5 * math.atan2(s, c) if np.isnan(axis) else axis
            for k in range(m):
                psi = pk[k] - ref
                a = w[k] * abs(math.sin(psi))
                cs = math.cos(psi)
                wc[k] = a
                wsn[k] = a * (cs * cs)
            den = 0.0 + _pairwise(wc, 0, m)
            if den != 0:
                out[f, 3] = 1.5 * ((0.0 + _pairwise(wsn, 0, m)) / den) - 0.5
    return out
