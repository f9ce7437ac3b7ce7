"""Kernels for high-flux RIXS integration: proportional distribution of pixels over energy bins.

After curvature correction, pixel ``(y, x)`` (detector coordinates, pixel centres at integers)
covers the corrected interval ``[y - c(x) - 1/2, y - c(x) + 1/2)`` with ``c(x) = a*x + b*x**2``.
Its intensity is shared among the bins that interval overlaps, in proportion to the overlap (the
fraction of the pixel in each bin; the fractions sum to 1 for a pixel inside the bin range). The
table of first bins and fractions is static for a geometry (`overlap_table`); per frame the kernel
is a scatter-add (`integrate_frames`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["overlap_table", "integrate_frames"]


def overlap_table(
    y0: int,
    x0: int,
    h: int,
    w: int,
    a: float,
    b: float,
    lo: float,
    width: float,
    nb: int,
    margin: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per ROI pixel, the first kept bin it overlaps and its fractions in successive bins.

    Parameters
    ----------
    y0, x0, h, w
        ROI offset and size in detector pixels.
    a, b
        Curvature: ``y' = y - (a*x + b*x**2)``.
    lo, width, nb
        Bin grid in corrected pixels: bin ``e`` is ``[lo + e*width, lo + (e+1)*width)``.
    margin
        Bins dropped at both ends; the table indexes the ``nb - 2*margin`` kept bins.

    Returns
    -------
    first : int64 ndarray, shape (h, w)
        Index (into the kept bins) of the first bin of each pixel.
    frac : float64 ndarray, shape (h, w, m)
        Fraction of the pixel in kept bins ``first + 0 ... first + m - 1`` (0 where a bin is
        dropped or outside the grid), ``m = ceil(1/width) + 1``.
    """
    if nb - 2 * margin <= 0:
        raise ValueError(f"margin {margin} leaves no bins of {nb}")
    m = int(math.ceil(1.0 / width)) + 1
    x = np.arange(x0, x0 + w, dtype=np.float64)
    y = np.arange(y0, y0 + h, dtype=np.float64)
    yc = y[:, None] - (a * x + b * x * x)[None, :]
    ta = (yc - 0.5 - lo) / width  # pixel start and end in bin units
    tb = (yc + 0.5 - lo) / width
    k0 = np.floor(ta).astype(np.int64)
    frac = np.zeros((h, w, m), dtype=np.float64)
    for j in range(m):
        e = k0 + j
        overlap = np.minimum(tb, e + 1.0) - np.maximum(ta, e.astype(np.float64))
        keep = (overlap > 0) & (e >= margin) & (e < nb - margin)
        frac[:, :, j] = np.where(keep, overlap * width, 0.0)
    first = k0 - margin
    # a pixel's fractions must land inside the kept bins: guaranteed by `keep`; clamp the index
    # only where all of its fractions are zero so the kernel never sees an out-of-range bin
    dead = ~frac.any(axis=2)
    first[dead] = 0
    return first, frac


@njit(nogil=True, cache=True)
def integrate_frames(frames, index, y0, x0, dark, has_dark, first, frac, out_sig, out_wt):
    """Distribute the ROI pixels of each frame in ``index`` over the kept energy bins.

    ``out_sig[n, e] = sum_p frac[p, e] * value_p`` and ``out_wt[n, e] = sum_p frac[p, e]`` over the
    finite pixels ``p`` of frame ``index[n]`` (non-finite pixels are a dynamic mask: skipped in
    both). ``value = raw - dark`` when ``has_dark``. Outputs are overwritten.
    """
    h = frac.shape[0]
    w = frac.shape[1]
    m = frac.shape[2]
    for n in range(index.shape[0]):
        f = index[n]
        for e in range(out_sig.shape[1]):
            out_sig[n, e] = 0.0
            out_wt[n, e] = 0.0
        for i in range(h):
            for j in range(w):
                v = np.float64(frames[f, y0 + i, x0 + j])
                if has_dark:
                    v = v - dark[i, j]
                if not np.isfinite(v):
                    continue
                e0 = first[i, j]
                for k in range(m):
                    fr = frac[i, j, k]
                    if fr != 0.0:
                        out_sig[n, e0 + k] += fr * v
                        out_wt[n, e0 + k] += fr
