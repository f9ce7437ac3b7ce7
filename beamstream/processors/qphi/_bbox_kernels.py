"""Numba kernels building the bounding-box pixel-splitting table (pyFAI ``splitBBox``) in CSC form.

Per pixel, the interval ``[fmin, fmax]`` (in bin units, along q and, for 2-D output, phi) is
spread over the bins it overlaps in proportion to the overlap; bins outside ``[0, npt)`` are
clipped onto the edge bins as pyFAI does. Two passes over the pixels: count the entries of each
pixel (for the row pointers), then fill bins and coefficients in place. Entries are ordered phi
outer, q inner; only positive coefficients are kept.
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["bbox_counts", "bbox_fill", "corner_deltas"]


@njit(nogil=True, cache=True, inline="always")
def _range(fmin, fmax, npt):  # pragma: no cover - numba
    """``(c0, c1, inv)``: the clipped first and last bins and 1 / span (0 for a zero span)."""
    c0 = min(max(math.floor(fmin), 0), npt - 1)
    c1 = min(max(math.floor(fmax), 0), npt - 1)
    span = fmax - fmin
    inv = 1.0 / span if span > 0 else 0.0
    return c0, c1, inv


@njit(nogil=True, cache=True, inline="always")
def _frac(b, c0, c1, fmin, fmax, inv):  # pragma: no cover - numba
    """The overlap fraction of bin ``b`` (1 for a pixel within one bin)."""
    if c0 == c1:
        return 1.0
    if b == c0:
        return ((c0 + 1) - fmin) * inv
    if b == c1:
        return (fmax - c1) * inv
    return 1.0 * inv


@njit(nogil=True, cache=True)
def bbox_counts(fq0, fq1, fp0, fp1, nq, nphi, two_d, counts):  # pragma: no cover - numba
    """Entries per pixel into ``counts`` (pixels ``i`` of the inputs, already selected)."""
    for i in range(fq0.shape[0]):
        q0, q1, qinv = _range(fq0[i], fq1[i], nq)
        if two_d:
            p0, p1, pinv = _range(fp0[i], fp1[i], nphi)
        else:
            p0, p1, pinv = 0, 0, 0.0
        n = 0
        for bp in range(p0, p1 + 1):
            fp = _frac(bp, p0, p1, fp0[i], fp1[i], pinv) if two_d else 1.0
            for bq in range(q0, q1 + 1):
                if fp * _frac(bq, q0, q1, fq0[i], fq1[i], qinv) > 0:
                    n += 1
        counts[i] = n


@njit(nogil=True, cache=True)
def bbox_fill(fq0, fq1, fp0, fp1, nq, nphi, two_d, ptr, bins, coef):  # pragma: no cover - numba
    """Bins and coefficients of every pixel, at ``ptr[i]:ptr[i + 1]`` (from `bbox_counts`)."""
    for i in range(fq0.shape[0]):
        q0, q1, qinv = _range(fq0[i], fq1[i], nq)
        if two_d:
            p0, p1, pinv = _range(fp0[i], fp1[i], nphi)
        else:
            p0, p1, pinv = 0, 0, 0.0
        k = ptr[i]
        for bp in range(p0, p1 + 1):
            fp = _frac(bp, p0, p1, fp0[i], fp1[i], pinv) if two_d else 1.0
            for bq in range(q0, q1 + 1):
                c = fp * _frac(bq, q0, q1, fq0[i], fq1[i], qinv)
                if c > 0:
                    bins[k] = bp * nq + bq if two_d else bq
                    coef[k] = c
                    k += 1


@njit(nogil=True, cache=True)
def corner_deltas(
    p1, p2, p3, m, wavelength, q_scale, q_centre, chi_centre, dq, dchi
):  # pragma: no cover - numba
    """pyFAI's bounding-box half widths from the pixel corners, fused (no temporaries).

    ``p1``, ``p2``, ``p3``: ``(npix, ncorner)`` detector coordinates of the corners; ``m`` the
    rotation matrix; ``q = 4 pi sin(2theta / 2) / wavelength * q_scale`` (as numpy computed it,
    to ~1e-14: libm and numpy differ in the last bits). Per pixel, ``dq`` is the largest
    ``|q(corner) - q(centre)|``, ``dchi`` the largest angular distance of a corner's chi from the
    centre's (wrapped at 2 pi).
    """
    two_pi = 2.0 * math.pi
    for i in range(p1.shape[0]):
        big_q = 0.0
        big_c = 0.0
        for k in range(p1.shape[1]):
            a, b, c = p1[i, k], p2[i, k], p3[i, k]
            t1 = m[0, 0] * a + m[0, 1] * b + m[0, 2] * c
            t2 = m[1, 0] * a + m[1, 1] * b + m[1, 2] * c
            t3 = m[2, 0] * a + m[2, 1] * b + m[2, 2] * c
            tth = math.atan2(math.sqrt(t1 * t1 + t2 * t2), t3)
            q = 4.0 * math.pi * math.sin(0.5 * tth) / wavelength * q_scale
            d = abs(q - q_centre[i])
            if d > big_q or k == 0:
                big_q = d
            dc = abs(math.atan2(t1, t2) - chi_centre[i])
            dc = min(dc, two_pi - dc)
            if dc > big_c or k == 0:
                big_c = dc
        dq[i] = big_q
        dchi[i] = big_c
