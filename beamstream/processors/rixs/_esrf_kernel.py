"""Numba kernel for ESRF RixsToolBox single-photon counting (``esrf`` mode, 3x3 spots).

Conventions (frames, ROI, dark, outputs, overflow) as in `_detect_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beamstream.processors.rixs._detect_kernels import _fill_row, roi_mean

__all__ = ["detect_esrf"]


@njit(nogil=True, cache=True)
def detect_esrf(
    frames,
    index,
    y0,
    x0,
    h,
    w,
    dark,
    has_dark,
    subtract_mean,
    low,
    high,
    single_min,
    dbl,
    out_y,
    out_x,
    out_sum,
    out_double,
    n_hits,
    n_overflow,
):  # pragma: no cover - numba
    """ESRF RixsToolBox single-photon counting on 3x3 spots.

    A pixel ``v`` with ``low < v < high`` (not on the ROI border) is a spot centre when no pixel of
    its 3x3 spot is greater (equal neighbours are all kept, as in RixsToolBox) and none is NaN. Spot
    pixels are clipped at 0; the spot sum ``I`` gives a single for ``single_min <= I < dbl`` and a
    double for ``I >= dbl``; spots below ``single_min`` are dropped. Positions are the centre of
    mass of the clipped spot. Outputs as in `detect_xfel` (``out_sum`` holds ``I``).
    """
    nf = index.shape[0]
    cap = out_y.shape[1]
    row = np.empty((3, w))
    for n in range(nf):
        f = index[n]
        n_hits[n] = 0
        n_overflow[n] = 0
        if h < 3 or w < 3:
            continue
        base = 0.0
        if subtract_mean:
            base = roi_mean(frames, f, y0, x0, h, w, dark, has_dark, row[0])
        _fill_row(frames, f, y0, x0, 0, w, dark, has_dark, base, row[0])
        _fill_row(frames, f, y0, x0, 1, w, dark, has_dark, base, row[1])
        for i in range(1, h - 1):
            # rows i-1, i, i+1 live in row[(i-1) % 3], row[i % 3], row[(i+1) % 3]
            _fill_row(frames, f, y0, x0, i + 1, w, dark, has_dark, base, row[(i + 1) % 3])
            rc = row[i % 3]
            for j in range(1, w - 1):
                v = rc[j]
                if not (v > low and v < high):
                    continue
                ok = True
                tot = 0.0
                sy = 0.0
                sx = 0.0
                for di in range(-1, 2):
                    rr = row[(i + di) % 3]
                    for dj in range(-1, 2):
                        u = rr[j + dj]
                        if not u <= v:  # greater, or NaN
                            ok = False
                            break
                        if u < 0.0:
                            u = 0.0
                        tot += u
                        sy += u * di
                        sx += u * dj
                    if not ok:
                        break
                if not ok or not tot >= single_min:
                    continue
                k = n_hits[n]
                if k >= cap:
                    n_overflow[n] += 1
                    continue
                out_y[n, k] = y0 + i + sy / tot
                out_x[n, k] = x0 + j + sx / tot
                out_sum[n, k] = tot
                out_double[n, k] = tot >= dbl
                n_hits[n] = k + 1
