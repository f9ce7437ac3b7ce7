"""numba kernel of the fused pass: scan-binned frame sums and the 1-D q scatter in one read.

``frames`` ``(n_frames, n_pixels)`` float is read once, in blocks of `BLOCK` pixels (a block of
every frame, so the per-block slot sums and the pixel -> bin table stay in cache). For every
accepted frame each pixel value is

* added to its slot's block sum (NaN skipped and counted: the binner's dynamic mask); the block
  sums go to the ``(n_slots, n_pixels)`` sums once per train, in frame order per slot (so the
  sums equal `beamstream.processors._binner_kernels.add_float`'s bit for bit);
* scatter-added to its q bin in the frame's destination row (a frame for per-frame I(q), else
  its slot), with the Poisson variance ``max(1, v)`` when asked; a non-finite value is removed
  from the normalization and count corrections instead (the q-phi integrator's dynamic mask).

Pixel blocks are shared among ``n_chunks`` parallel chunks, each with its own q sums
(``(n_chunks, n_rows, n_bins)``, summed by the caller): no atomics. ``nogil``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["BLOCK", "bin_and_scatter", "dense_bins"]

#: pixels per block: the float64 slot sums of a block are 16 KiB per slot
BLOCK = 2048
#: interleaved partial q sums per row (see `_scatter`)
LANES = 4


def dense_bins(pix: np.ndarray, idx: np.ndarray, norm: np.ndarray, npix: int, nbins: int):
    """Per-pixel q bin and normalization from a compact pixel table.

    Pixels outside the table get bin ``nbins``: a spare column of the q sums that the caller
    drops, so that the scatter needs no branch.
    """
    bins = np.full(npix, nbins, np.int32)
    bins[pix] = idx
    dense_norm = np.zeros(npix, np.float32)
    dense_norm[pix] = norm
    return bins, dense_norm


@njit(nogil=True, cache=True, boundscheck=False)
def _slot_sums(f0, f1, f2, f3, g, arow, nrow, n):  # pragma: no cover - compiled
    """``arow += f0 (+ f1 + f2 + f3)`` where not NaN, in frame order, in one pass over ``arow``
    (the same operations, so the same result, as ``g`` passes). Vectorizable selects; returns
    the number of non-finite values, and counts NaN per pixel in ``nrow`` only when there are
    any."""
    bad = 0
    if g == 4:
        for p in range(n):
            v0 = np.float64(f0[p])
            v1 = np.float64(f1[p])
            v2 = np.float64(f2[p])
            v3 = np.float64(f3[p])
            a = arow[p]
            a += v0 if v0 == v0 else 0.0
            a += v1 if v1 == v1 else 0.0
            a += v2 if v2 == v2 else 0.0
            a += v3 if v3 == v3 else 0.0
            arow[p] = a
            bad += (
                (not abs(v0) < np.inf)
                + (not abs(v1) < np.inf)
                + (not abs(v2) < np.inf)
                + (not abs(v3) < np.inf)
            )
    else:
        for p in range(n):
            v0 = np.float64(f0[p])
            arow[p] += v0 if v0 == v0 else 0.0
            bad += not abs(v0) < np.inf
    if bad:
        _count_nan(f0, nrow, n)
        if g == 4:
            _count_nan(f1, nrow, n)
            _count_nan(f2, nrow, n)
            _count_nan(f3, nrow, n)
    return bad


@njit(nogil=True, cache=True, boundscheck=False)
def _count_nan(src, nrow, n):  # pragma: no cover - compiled
    for p in range(n):
        if src[p] != src[p]:
            nrow[p] += 1


@njit(nogil=True, cache=True, boundscheck=False)
def _scatter(src, bins, srow, vrow, with_var, n):  # pragma: no cover - compiled
    """``srow[bins[p]] += src[p]`` (and the variance) for a block without non-finite values.

    ``srow`` and ``vrow`` are ``(LANES, nbins + 1)``: neighbouring pixels (often of the same
    bin) add into different lanes, so consecutive additions do not wait for each other.
    """
    p = 0
    if with_var:
        while p + LANES <= n:
            for lane in range(LANES):
                v = np.float64(src[p + lane])
                b = bins[p + lane]
                srow[lane, b] += v
                vrow[lane, b] += max(1.0, v)
            p += LANES
        while p < n:
            v = np.float64(src[p])
            srow[0, bins[p]] += v
            vrow[0, bins[p]] += max(1.0, v)
            p += 1
    else:
        while p + LANES <= n:
            for lane in range(LANES):
                srow[lane, bins[p + lane]] += np.float64(src[p + lane])
            p += LANES
        while p < n:
            srow[0, bins[p]] += np.float64(src[p])
            p += 1


@njit(nogil=True, cache=True, boundscheck=False)
def _scatter_checked(src, bins, norm, srow, vrow, wrow, crow, with_var, n):  # pragma: no cover
    """`_scatter` for a block with non-finite values: those leave the normalization instead."""
    for p in range(n):
        v = np.float64(src[p])
        b = bins[p]
        if math.isfinite(v):
            srow[0, b] += v
            if with_var:
                vrow[0, b] += max(1.0, v)
        else:
            wrow[0, b] -= norm[p]
            crow[0, b] -= 1.0


@njit(nogil=True, cache=True)
def _frames_of(slot, nslot):  # pragma: no cover - compiled
    """``(nslot, nf)``: row ``s`` starts with the frame indices of slot ``s``, in order."""
    idx = np.empty((nslot, slot.shape[0]), np.int64)
    fill = np.zeros(nslot, np.int64)
    for k in range(slot.shape[0]):
        if slot[k] >= 0:
            idx[slot[k], fill[slot[k]]] = k
            fill[slot[k]] += 1
    return idx


@njit(parallel=True, nogil=True, cache=True, boundscheck=False)
def bin_and_scatter(
    frames, slot, dest, nper, sums, pixel_counts, bins, norm, with_var, S, V, Wc, Cc
):  # pragma: no cover - compiled
    """One pass over ``frames`` (see the module docstring).

    Parameters
    ----------
    frames : (nf, npix) float32 or float64
    slot : (nf,) int64, binner slot per frame (-1: rejected)
    dest : (nf,) int64, q-sum row per frame (-1: rejected)
    nper : (nslot,) int64, accepted frames per slot
    sums : (nslot, npix) float64, pixel_counts : (nslot, npix) int64 (updated in place)
    bins : (npix,) int32, q bin per pixel (``nbins``: not integrated); norm : (npix,) float32
    S, V, Wc, Cc : (nchunks, nrows, LANES, nbins + 1) float64 zeros on entry (V unused unless
    with_var; summed over chunks and lanes by the caller); the last column collects the pixels
    not integrated
    """
    nf, npix = frames.shape
    nslot = sums.shape[0]
    nchunks = S.shape[0]
    nblock = (npix + BLOCK - 1) // BLOCK
    idx = _frames_of(slot, nslot)
    for c in prange(nchunks):
        acc = np.empty((nslot, BLOCK), np.float64)
        nan = np.empty((nslot, BLOCK), np.int64)
        for b in range((c * nblock) // nchunks, ((c + 1) * nblock) // nchunks):
            lo = b * BLOCK
            n = min(BLOCK, npix - lo)
            for s in range(nslot):
                for p in range(n):
                    acc[s, p] = 0.0
                    nan[s, p] = 0
            for s in range(nslot):
                m = nper[s]
                j = 0
                while j < m:  # the slot's frames, four per pass over its block sums
                    g = 4 if j + 4 <= m else 1
                    ks = (idx[s, j], idx[s, j + g - 1], idx[s, j + g - 1], idx[s, j + g - 1])
                    if g == 4:
                        ks = (idx[s, j], idx[s, j + 1], idx[s, j + 2], idx[s, j + 3])
                    bad = _slot_sums(
                        frames[ks[0], lo : lo + n], frames[ks[1], lo : lo + n],
                        frames[ks[2], lo : lo + n], frames[ks[3], lo : lo + n],
                        g, acc[s], nan[s], n,
                    )  # fmt: skip
                    for kk in range(g):  # the same frames, now in cache, into q bins
                        k = ks[kk]
                        d = dest[k]
                        src = frames[k, lo : lo + n]
                        vrow = V[c, d] if with_var else V[c, 0]
                        if bad:
                            _scatter_checked(
                                src, bins[lo : lo + n], norm[lo : lo + n], S[c, d], vrow,
                                Wc[c, d], Cc[c, d], with_var, n,
                            )  # fmt: skip
                        else:
                            _scatter(src, bins[lo : lo + n], S[c, d], vrow, with_var, n)
                    j += g
            for s in range(nslot):
                if nper[s] == 0:
                    continue
                row = sums[s, lo : lo + n]
                crow = pixel_counts[s, lo : lo + n]
                for p in range(n):
                    row[p] += acc[s, p]
                    crow[p] += nper[s] - nan[s, p]
