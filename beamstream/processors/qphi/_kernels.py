"""numba kernels of the q-phi integration: pixel-ordered scatter-add into cache-resident sums.

The kernels know no geometry and no I/O. They take a batch of frames ``(nframes, npix)`` and a
compact table of the valid pixels of one detector (pixel index, bin index, normalization, dark),
and add every accepted frame ``order[i]`` into row ``chunk_base[c] + odest[i]`` of the output sums.
Work is split into chunks (frame ranges x table ranges); chunks run in parallel
(``numba.prange``) and never share an output row, so no atomics are needed.

Only the signal (and Poisson variance ``max(1, raw)``, as pyFAI computes it: the dark is taken
as noiseless) is scattered per frame. Normalization and counts of the
static table are added by the caller (``n_frames * static sums``); a pixel that is non-finite
(or equal to the dummy value) in one frame is *subtracted* from the ``Wc``/``Cc`` corrections
for that frame only (dynamic mask).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["scatter_nosplit", "scatter_split", "chunking"]


#: frames summed per pixel before one scatter (frames of the same destination row)
FRAME_BLOCK = 8


@njit(nogil=True, cache=True, inline="always")
def _group_end(odest, a, end):  # pragma: no cover - compiled
    d = odest[a]
    g = a + 1
    while g < end and g - a < FRAME_BLOCK and odest[g] == d:
        g += 1
    return g


@njit(parallel=True, nogil=True, cache=True)
def scatter_nosplit(
    frames,
    order,
    odest,
    chunk_f0,
    chunk_f1,
    chunk_p0,
    chunk_p1,
    chunk_base,
    pix,
    idx,
    norm,
    dark,
    use_dark,
    with_var,
    check_dummy,
    dummy,
    delta_dummy,
    S,
    V,
    Wc,
    Cc,
):  # pragma: no cover - compiled
    """No-split scatter-add: ``S[row, idx[j]] += frames[k, pix[j]] - dark[j]``.

    Frames are visited in ``order`` (accepted frames sorted by destination row ``odest``); up
    to `FRAME_BLOCK` consecutive frames with the same row are summed per pixel before one
    scatter, so the table is read and the histogram touched once per block. A pixel whose block
    sum is not finite (or any pixel when ``check_dummy``) is handled frame by frame.

    Parameters
    ----------
    frames : (nframes, npix) array of any numeric dtype
    order, odest : (naccepted,) int64, frame index and destination row, sorted by row
    chunk_f0, chunk_f1, chunk_p0, chunk_p1, chunk_base : (nchunks,) int64
        Range in ``order``, table range and row offset of each parallel chunk.
    pix, idx : (nvalid,) int32, pixel index into a frame and bin index
    norm, dark : (nvalid,) float32 (``dark`` unused unless ``use_dark``)
    S, Wc, Cc : (nrows, nbins) float64 outputs; V likewise when ``with_var`` (else (1, 1)).
    """
    for c in prange(chunk_f0.shape[0]):
        base = chunk_base[c]
        p0 = chunk_p0[c]
        p1 = chunk_p1[c]
        a = chunk_f0[c]
        end = chunk_f1[c]
        while a < end:
            g = _group_end(odest, a, end)
            row = base + odest[a]
            nblk = np.float64(g - a)
            s_row = S[row]
            v_row = V[row] if with_var else V[0]
            for j in range(p0, p1):
                p = pix[j]
                b = idx[j]
                tot = 0.0
                for kk in range(a, g):
                    tot += np.float64(frames[order[kk], p])
                dk = np.float64(dark[j]) if use_dark else 0.0
                if math.isfinite(tot) and not check_dummy:
                    s_row[b] += tot - nblk * dk
                    if with_var:
                        var = 0.0
                        for kk in range(a, g):
                            var += max(1.0, np.float64(frames[order[kk], p]))
                        v_row[b] += var
                    continue
                for kk in range(a, g):
                    raw = np.float64(frames[order[kk], p])
                    sig = raw - dk
                    if not math.isfinite(sig) or (check_dummy and abs(raw - dummy) <= delta_dummy):
                        Wc[row, b] -= norm[j]
                        Cc[row, b] -= 1.0
                        continue
                    s_row[b] += sig
                    if with_var:
                        v_row[b] += max(1.0, raw)
            a = g


@njit(parallel=True, nogil=True, cache=True)
def scatter_split(
    frames,
    order,
    odest,
    chunk_f0,
    chunk_f1,
    chunk_p0,
    chunk_p1,
    chunk_base,
    pix,
    ptr,
    bins,
    coef,
    norm,
    dark,
    use_dark,
    with_var,
    check_dummy,
    dummy,
    delta_dummy,
    S,
    V,
    Wc,
    Cc,
):  # pragma: no cover - compiled
    """Pixel-splitting scatter-add (same frame visiting as `scatter_nosplit`): pixel ``j`` adds
    ``coef[e] * signal`` to ``bins[e]`` and ``coef[e]**2 * variance`` to V for ``e`` in
    ``ptr[j]:ptr[j+1]`` (a CSC table: pixel -> bins)."""
    for c in prange(chunk_f0.shape[0]):
        base = chunk_base[c]
        p0 = chunk_p0[c]
        p1 = chunk_p1[c]
        a = chunk_f0[c]
        end = chunk_f1[c]
        while a < end:
            g = _group_end(odest, a, end)
            row = base + odest[a]
            for j in range(p0, p1):
                p = pix[j]
                dk = np.float64(dark[j]) if use_dark else 0.0
                tot = 0.0
                var = 0.0
                for kk in range(a, g):
                    raw = np.float64(frames[order[kk], p])
                    sig = raw - dk
                    if not math.isfinite(sig) or (check_dummy and abs(raw - dummy) <= delta_dummy):
                        for e in range(ptr[j], ptr[j + 1]):
                            Wc[row, bins[e]] -= coef[e] * norm[j]
                            Cc[row, bins[e]] -= coef[e]
                        continue
                    tot += sig
                    if with_var:
                        var += max(1.0, raw)
                for e in range(ptr[j], ptr[j + 1]):
                    S[row, bins[e]] += coef[e] * tot
                    if with_var:
                        V[row, bins[e]] += coef[e] * coef[e] * var
            a = g


def chunking(
    nacc: int, ntable: int, nthreads: int, per_frame: bool, ndest: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Split a batch into parallel chunks.

    With at least ``nthreads`` accepted frames the frames are split (each chunk owns its own
    block of output rows unless ``per_frame``, where a frame's row is its own); otherwise the
    pixel table is split and each chunk writes its own block of rows.

    Parameters
    ----------
    nacc
        Number of accepted frames (the length of ``order``).
    ntable
        Length of the pixel table.
    nthreads
        Number of parallel chunks wanted.
    per_frame
        Destination rows are frame indices (True) or slot indices (False).
    ndest
        Rows per block (number of slots, or of frames when ``per_frame``).

    Returns
    -------
    f0, f1, p0, p1, base, nblocks
        Chunk arrays and the number of row blocks the caller must allocate and sum.
    """
    nthreads = max(1, int(nthreads))
    if nacc >= nthreads or ntable < 4096 * nthreads:
        nch = min(nthreads, max(nacc, 1))
        cuts = (np.arange(nch + 1) * nacc) // nch
        f0 = cuts[:-1].astype(np.int64)
        f1 = cuts[1:].astype(np.int64)
        p0 = np.zeros(nch, dtype=np.int64)
        p1 = np.full(nch, ntable, dtype=np.int64)
        if per_frame:
            base = np.zeros(nch, dtype=np.int64)
            nblocks = 1
        else:
            base = np.arange(nch, dtype=np.int64) * ndest
            nblocks = nch
    else:
        nch = nthreads
        edges = np.linspace(0, ntable, nch + 1).astype(np.int64)
        f0 = np.zeros(nch, dtype=np.int64)
        f1 = np.full(nch, nacc, dtype=np.int64)
        p0 = edges[:-1].copy()
        p1 = edges[1:].copy()
        base = np.arange(nch, dtype=np.int64) * ndest
        nblocks = nch
    return f0, f1, p0, p1, base, nblocks
