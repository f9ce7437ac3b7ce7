"""Numba kernels for single-photon detection: shared row helpers and the hRIXS ``xfel`` mode.

The kernels know no I/O and no configuration objects: they take the raw frames of one train
(any numeric dtype, ``(frame, y, x)``), the indices of the frames to process, the region of interest
as an offset and a size, an optional dark image (ROI-shaped, float64) and per-frame thresholds, and
write hits into preallocated ``(n, cap)`` arrays. A frame with more hits than ``cap`` stores the
first ``cap`` (raster order) and counts the rest in ``n_overflow``; nothing grows.

The ESRF ``esrf`` mode is in `_esrf_kernel`, the histogramming of hits in `_histogram_kernel`.

Pixel values are ``value = float(raw) - dark - base`` where ``base`` is the ROI mean of the
dark-subtracted frame when ``subtract_mean`` is set, else 0. Positions are returned in detector
pixel coordinates (pixel centres at integers): ``y = y0 + row``, ``x = x0 + column``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["roi_mean", "detect_xfel"]


@njit(nogil=True, cache=True)
def _fill_row(frames, f, y0, x0, i, w, dark, has_dark, base, out):  # pragma: no cover - numba
    """``out[j] = raw - dark - base`` for ROI row ``i``."""
    r = frames[f, y0 + i, x0 : x0 + w]
    if has_dark:
        d = dark[i]
        for j in range(w):
            out[j] = np.float64(r[j]) - d[j] - base
    else:
        for j in range(w):
            out[j] = np.float64(r[j]) - base


@njit(nogil=True, cache=True, fastmath={"reassoc"})
def _row_sum(row):  # pragma: no cover - numba
    """Sum of ``row`` with four interleaved accumulators (NaN if any value is NaN)."""
    n = row.shape[0]
    p0 = p1 = p2 = p3 = 0.0
    j = 0
    while j + 4 <= n:
        p0 += row[j]
        p1 += row[j + 1]
        p2 += row[j + 2]
        p3 += row[j + 3]
        j += 4
    while j < n:
        p0 += row[j]
        j += 1
    return (p0 + p1) + (p2 + p3)


@njit(nogil=True, cache=True)
def roi_mean(frames, f, y0, x0, h, w, dark, has_dark, row):  # pragma: no cover - numba
    """Mean of the finite dark-subtracted ROI pixels of frame ``f`` (0.0 when none).

    ``row`` is scratch space of length ``w``.
    """
    total = 0.0
    for i in range(h):
        _fill_row(frames, f, y0, x0, i, w, dark, has_dark, 0.0, row)
        total += _row_sum(row)
    if np.isfinite(total):
        return total / (h * w)
    return _finite_mean(frames, f, y0, x0, h, w, dark, has_dark, row)


@njit(nogil=True, cache=True)
def _finite_mean(frames, f, y0, x0, h, w, dark, has_dark, row):  # pragma: no cover - numba
    total = 0.0
    n = 0
    for i in range(h):
        _fill_row(frames, f, y0, x0, i, w, dark, has_dark, 0.0, row)
        for j in range(w):
            if np.isfinite(row[j]):
                total += row[j]
                n += 1
    return total / n if n > 0 else 0.0


@njit(nogil=True, cache=True)
def _s2_row(top, bottom, out):  # pragma: no cover - numba
    """2x2 sums of two value rows, in the order ``(a00 + a10) + a01 + a11``."""
    n = out.shape[0]
    t0 = top[:n]
    t1 = top[1 : n + 1]
    b0 = bottom[:n]
    b1 = bottom[1 : n + 1]
    for j in range(n):
        out[j] = t0[j] + b0[j] + t1[j] + b1[j]


@njit(nogil=True, cache=True, fastmath={"reassoc"})
def _moments(row, kref):  # pragma: no cover - numba
    """``(sum(d), sum(d**2))`` with ``d = row - kref``, four interleaved accumulators."""
    n4 = row.shape[0] // 4
    r0 = row[0 : 4 * n4 : 4]
    r1 = row[1 : 4 * n4 : 4]
    r2 = row[2 : 4 * n4 : 4]
    r3 = row[3 : 4 * n4 : 4]
    p0 = p1 = p2 = p3 = 0.0
    q0 = q1 = q2 = q3 = 0.0
    for j in range(n4):
        d0 = r0[j] - kref
        d1 = r1[j] - kref
        d2 = r2[j] - kref
        d3 = r3[j] - kref
        p0 += d0
        p1 += d1
        p2 += d2
        p3 += d3
        q0 += d0 * d0
        q1 += d1 * d1
        q2 += d2 * d2
        q3 += d3 * d3
    for j in range(4 * n4, row.shape[0]):
        d0 = row[j] - kref
        p0 += d0
        q0 += d0 * d0
    return (p0 + p1) + (p2 + p3), (q0 + q1) + (q2 + q3)


@njit(nogil=True, cache=True)
def _s2_finite_stats(frames, f, y0, x0, h, w, dark, has_dark, ra, rb, srow):  # pragma: no cover
    """Mean and population std of the finite 2x2 sums (two streaming passes); NaN if none."""
    total = 0.0
    cnt = 0
    m2 = 0.0
    mean = 0.0
    for rep in range(2):
        _fill_row(frames, f, y0, x0, 0, w, dark, has_dark, 0.0, ra)
        prev = ra
        cur = rb
        for i in range(h - 1):
            _fill_row(frames, f, y0, x0, i + 1, w, dark, has_dark, 0.0, cur)
            _s2_row(prev, cur, srow)
            for j in range(w - 1):
                v = srow[j]
                if np.isfinite(v):
                    if rep == 0:
                        total += v
                        cnt += 1
                    else:
                        m2 += (v - mean) * (v - mean)
            tmp = prev
            prev = cur
            cur = tmp
        if cnt == 0:
            return np.nan, np.nan
        mean = total / cnt
    return mean, np.sqrt(m2 / cnt)


@njit(nogil=True, cache=True)
def detect_xfel(
    frames,
    index,
    y0,
    x0,
    h,
    w,
    dark,
    has_dark,
    subtract_mean,
    thr_abs,
    k_sigma,
    dbl_abs,
    dbl_factor,
    out_y,
    out_x,
    out_sum,
    out_double,
    n_hits,
    n_overflow,
    thr_used,
    dbl_used,
):  # pragma: no cover - numba
    """2x2-sum detection, 3x3 local maximum on the 2x2 sums, 4x4 centre of mass.

    The 2x2 sums ``S2`` are taken of ``raw - dark`` (order ``(a00 + a10) + a01 + a11``); the mean
    ``base`` of each frame, when subtracted, enters as ``S2 > thr + 4*base`` (the same test as
    ``S2 - 4*base > thr``) and in the centre-of-mass weights ``raw - dark - base``. The sums are
    streamed row by row (a ring of three rows), never stored for the whole frame: one pass for the
    frame statistics when needed, one for detection.

    Parameters
    ----------
    frames : ndarray, shape (F, Y, X)
        Raw frames of one train.
    index : int64 ndarray, shape (n,)
        Frames to process.
    y0, x0, h, w : int
        ROI offset and size.
    dark : float64 ndarray, shape (h, w)
        Dark image of the ROI (ignored unless ``has_dark``).
    has_dark, subtract_mean : bool
        Dark subtraction; subtraction of the ROI mean of each frame.
    thr_abs : float64 ndarray, shape (n,)
        Candidate threshold on the (mean-subtracted) 2x2 sums per frame; NaN means
        ``mean + k_sigma * std`` of the finite 2x2 sums of that frame.
    k_sigma : float
        Number of standard deviations for NaN thresholds.
    dbl_abs : float64 ndarray, shape (n,)
        Double-hit threshold on the 4x4 sum per frame; NaN means ``dbl_factor * threshold``.
    dbl_factor : float
        See ``dbl_abs``.
    out_y, out_x, out_sum : float64 ndarray, shape (n, cap)
        Hit positions (detector pixels) and 4x4 window sums.
    out_double : bool ndarray, shape (n, cap)
        Whether the hit is a double (window sum above the double threshold).
    n_hits, n_overflow : int64 ndarray, shape (n,)
        Stored hits and hits beyond ``cap`` per frame (set, not added to).
    thr_used, dbl_used : float64 ndarray, shape (n,)
        The thresholds applied per frame (on mean-subtracted sums).
    """
    nf = index.shape[0]
    cap = out_y.shape[1]
    hs = h - 1
    ws = w - 1
    if hs < 3 or ws < 3:
        for n in range(nf):
            n_hits[n] = 0
            n_overflow[n] = 0
            thr_used[n] = np.nan
            dbl_used[n] = np.nan
        return
    ra = np.empty(w)
    rb = np.empty(w)
    ring = np.empty((3, ws))
    for n in range(nf):
        f = index[n]
        n_hits[n] = 0
        n_overflow[n] = 0
        sigma_mode = np.isnan(thr_abs[n])
        # pass 1 (when needed): frame sum, and moments of the 2x2 sums about kref
        vsum = 0.0
        a1 = 0.0
        a2 = 0.0
        kref = 0.0
        if sigma_mode or subtract_mean:
            _fill_row(frames, f, y0, x0, 0, w, dark, has_dark, 0.0, ra)
            vsum = _row_sum(ra)
            prev = ra
            cur = rb
            for i in range(hs):
                _fill_row(frames, f, y0, x0, i + 1, w, dark, has_dark, 0.0, cur)
                vsum += _row_sum(cur)
                if sigma_mode:
                    srow = ring[0]
                    _s2_row(prev, cur, srow)
                    if i == 0 and np.isfinite(srow[0]):
                        kref = srow[0]
                    r1, r2 = _moments(srow, kref)
                    a1 += r1
                    a2 += r2
                tmp = prev
                prev = cur
                cur = tmp
        base = 0.0
        if subtract_mean:
            if np.isfinite(vsum):
                base = vsum / (h * w)
            else:
                base = _finite_mean(frames, f, y0, x0, h, w, dark, has_dark, ra)
        if sigma_mode:
            if np.isfinite(a1) and np.isfinite(a2):
                cnt = hs * ws
                m1 = a1 / cnt
                thr_raw = kref + m1 + k_sigma * np.sqrt(max(a2 / cnt - m1 * m1, 0.0))
            else:
                mean, std = _s2_finite_stats(
                    frames, f, y0, x0, h, w, dark, has_dark, ra, rb, ring[0]
                )
                thr_raw = mean + k_sigma * std
                if np.isnan(thr_raw):
                    thr_raw = np.inf
            thr = thr_raw - 4.0 * base
        else:
            thr = thr_abs[n]
            thr_raw = thr + 4.0 * base
        dbl = dbl_abs[n]
        if np.isnan(dbl):
            dbl = dbl_factor * thr
        thr_used[n] = thr
        dbl_used[n] = dbl
        # pass 2: stream the 2x2 sums; once row r is known, test row r - 1 for local maxima
        # (>= towards earlier raster neighbours, > towards later ones), restricted to blocks
        # whose 4x4 window lies inside the ROI (1 <= row <= hs - 2, 1 <= col <= ws - 2)
        _fill_row(frames, f, y0, x0, 0, w, dark, has_dark, 0.0, ra)
        prev = ra
        cur = rb
        for r in range(hs):
            _fill_row(frames, f, y0, x0, r + 1, w, dark, has_dark, 0.0, cur)
            _s2_row(prev, cur, ring[r % 3])
            tmp = prev
            prev = cur
            cur = tmp
            if r < 2:
                continue
            i = r - 1
            up = ring[(r - 2) % 3]
            mid = ring[i % 3]
            lo = ring[r % 3]
            for j in range(1, ws - 1):
                s = mid[j]
                if not s > thr_raw:
                    continue
                if not (
                    s >= up[j - 1]
                    and s >= up[j]
                    and s >= up[j + 1]
                    and s >= mid[j - 1]
                    and s > mid[j + 1]
                    and s > lo[j - 1]
                    and s > lo[j]
                    and s > lo[j + 1]
                ):
                    continue
                tot = 0.0
                sy = 0.0
                sx = 0.0
                for di in range(-1, 3):
                    for dj in range(-1, 3):
                        v = np.float64(frames[f, y0 + i + di, x0 + j + dj])
                        if has_dark:
                            v = v - dark[i + di, j + dj]
                        v = v - base
                        tot += v
                        sy += v * di
                        sx += v * dj
                if not tot > 0.0:  # NaN in the window, or no charge
                    continue
                k = n_hits[n]
                if k >= cap:
                    n_overflow[n] += 1
                    continue
                out_y[n, k] = y0 + i + sy / tot
                out_x[n, k] = x0 + j + sx / tot
                out_sum[n, k] = tot
                out_double[n, k] = tot > dbl
                n_hits[n] = k + 1
