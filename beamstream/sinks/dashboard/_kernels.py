"""Numba kernels of the display: NaN-aware sums in one pass, without temporary arrays.

They run in the dashboard's thread at every update, next to the processing threads; ``nogil``
lets the processing keep the interpreter while they run, and one pass over the data (no NaN
copies, no masks) keeps an update's cost small.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["nan_roi_sums", "weighted_nanmean"]


@njit(nogil=True, cache=True)
def nan_roi_sums(
    stack: np.ndarray, y0: int, y1: int, x0: int, x1: int, sums: np.ndarray, counts: np.ndarray
) -> None:
    """Sum the finite pixels of ``stack[i, y0:y1, x0:x1]`` into ``sums[i]``; their number
    into ``counts[i]`` (both zeroed first). ``stack`` is ``(n, ny, nx)``, any numeric dtype."""
    for i in range(stack.shape[0]):
        total = 0.0
        n = 0
        for y in range(y0, y1):
            for x in range(x0, x1):
                v = np.float64(stack[i, y, x])
                if np.isfinite(v):
                    total += v
                    n += 1
        sums[i] = total
        counts[i] = n


@njit(nogil=True, cache=True)
def weighted_nanmean(data: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
    """``out[p] = sum_k w[k] * data[k, p] / sum_k w[k]`` over the finite ``data[k, p]`` with
    ``w[k] > 0``; NaN where there is none. ``data`` is ``(n, n_pixels)``, ``weights`` ``(n,)``."""
    for p in range(data.shape[1]):
        num = 0.0
        den = 0.0
        for k in range(data.shape[0]):
            w = weights[k]
            if w > 0:
                v = np.float64(data[k, p])
                if np.isfinite(v):
                    num += w * v
                    den += w
        out[p] = num / den if den > 0 else np.nan
