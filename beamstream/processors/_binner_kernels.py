"""Numba kernels of `ScanBinner`: add the accepted frames of one train into per-slot sums.

Both kernels work in place on preallocated arrays, batched over the frames of one train, with the
pixels flattened: ``frames`` is ``(n_frames, n_pixels)`` (any numeric dtype), ``slot`` the
per-frame slot index (``-1`` = rejected frame), and the sums are the ``(n_slots, n_pixels)`` row
of one scan bin, whose ``(n_slots,)`` frame counts are updated by the same call.

The pixel axis is cut into blocks of `BLOCK` pixels, distributed over threads with ``prange``
(every thread owns disjoint output memory: no atomics). Inside a block, the frames of one slot are
first summed into a small cache-resident scratch buffer (``uint32`` for 8/16-bit integers, which
is exact for up to 65537 frames per slot, else ``int64``/``float64``), which is then added to the
state once per train. The frames are therefore read exactly once and the large sums are touched
once per train, not once per frame. With a 32-bit scratch, four frames of a slot are summed in
registers per pass over the scratch (see `_int_block`), which keeps the kernel bound by reading the
frames rather than by traffic to the scratch. The kernels are ``nogil``: pipeline threads overlap.

Every kernel comes twice: ``add_*`` (``parallel=True``, blocks shared among numba's threads) and
``add_*_serial`` (one thread: no thread launch, for small trains or ``threads = 1``). They share
the per-block functions, so both give bit-identical results.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "BLOCK",
    "add_int",
    "add_int_serial",
    "add_float",
    "add_float_serial",
    "scratch_dtype",
]

#: pixels per block (an 8192-pixel uint32 scratch is 32 KiB: it stays in L1/L2)
BLOCK = 8192


def scratch_dtype(frame_dtype: np.dtype, max_frames_per_slot: int) -> np.dtype:
    """The per-block accumulator type that is exact for this data (integer frames only)."""
    dt = np.dtype(frame_dtype)
    if dt.itemsize <= 2 and max_frames_per_slot <= 65536:
        return np.dtype(np.uint32) if dt.kind in "bu" else np.dtype(np.int32)
    return np.dtype(np.int64)


@njit(nogil=True, cache=True)
def _count(slot: np.ndarray, counts: np.ndarray, nslot: int, per_train_mean: bool) -> np.ndarray:
    """Accepted frames per slot of this train; adds them (or 1 per used slot) to ``counts``."""
    nper = np.zeros(nslot, np.int64)
    for k in range(slot.shape[0]):
        if slot[k] >= 0:
            nper[slot[k]] += 1
    for s in range(nslot):
        if per_train_mean:
            counts[s] += 1 if nper[s] > 0 else 0
        else:
            counts[s] += nper[s]
    return nper


@njit(nogil=True, cache=True)
def _frames_of(slot: np.ndarray, nslot: int) -> np.ndarray:
    """``(n_slots, n_frames)``: row ``s`` starts with the frame indices of slot ``s``, in order."""
    idx = np.empty((nslot, slot.shape[0]), np.int64)
    fill = np.zeros(nslot, np.int64)
    for k in range(slot.shape[0]):
        s = slot[k]
        if s >= 0:
            idx[s, fill[s]] = k
            fill[s] += 1
    return idx


@njit(nogil=True, cache=True, boundscheck=False)
def _int_block(frames, idx, nper, sums, per_train_mean, acc, lo, n):
    """Pixels ``lo:lo+n`` of every slot: sum the slot's frames in ``acc``, add to ``sums``.

    With a 32-bit ``acc`` (8/16-bit frames) four frames are added per pass over ``acc``: the
    scratch is read and written once per four frames, not per frame (the sum of four frames is
    computed in registers, in 64-bit integers, and truncated once: exact, as every partial sum
    fits ``acc``). Wider frames (64-bit ``acc``) add one frame at a time, as before: numba types
    ``int64 + uint64`` as float64, so grouping would change how uint64 frames are rounded.
    """
    hi = lo + n
    four = acc.itemsize == 4
    for s in range(sums.shape[0]):
        m = nper[s]
        if m == 0:
            continue
        for p in range(n):
            acc[p] = 0
        j = 0
        if four:
            while j + 8 <= m:  # eight frames per pass over acc (exact: partial sums fit acc)
                f0 = frames[idx[s, j], lo:hi]
                f1 = frames[idx[s, j + 1], lo:hi]
                f2 = frames[idx[s, j + 2], lo:hi]
                f3 = frames[idx[s, j + 3], lo:hi]
                f4 = frames[idx[s, j + 4], lo:hi]
                f5 = frames[idx[s, j + 5], lo:hi]
                f6 = frames[idx[s, j + 6], lo:hi]
                f7 = frames[idx[s, j + 7], lo:hi]
                for p in range(n):
                    acc[p] += (
                        (np.int64(f0[p]) + np.int64(f1[p])) + (np.int64(f2[p]) + np.int64(f3[p]))
                    ) + ((np.int64(f4[p]) + np.int64(f5[p])) + (np.int64(f6[p]) + np.int64(f7[p])))
                j += 8
            while j + 4 <= m:
                f0 = frames[idx[s, j], lo:hi]
                f1 = frames[idx[s, j + 1], lo:hi]
                f2 = frames[idx[s, j + 2], lo:hi]
                f3 = frames[idx[s, j + 3], lo:hi]
                for p in range(n):
                    acc[p] += (np.int64(f0[p]) + np.int64(f1[p])) + (
                        np.int64(f2[p]) + np.int64(f3[p])
                    )
                j += 4
        while j < m:
            src = frames[idx[s, j], lo:hi]
            for p in range(n):
                acc[p] += src[p]
            j += 1
        row = sums[s, lo:hi]
        if per_train_mean:
            d = np.float64(m)
            for p in range(n):
                row[p] += acc[p] / d
        else:
            for p in range(n):
                row[p] += acc[p]


@njit(nogil=True, cache=True)
def _float_block(frames, slot, nper, sums, pixel_counts, per_train_mean, acc, cnt, lo, n):
    """Like `_int_block` for float frames, skipping and counting NaN per pixel."""
    nf = frames.shape[0]
    for s in range(sums.shape[0]):
        if nper[s] == 0:
            continue
        for p in range(n):
            acc[p] = 0.0
            cnt[p] = 0
        for k in range(nf):
            if slot[k] != s:
                continue
            src = frames[k, lo : lo + n]
            for p in range(n):
                v = src[p]
                if v == v:
                    acc[p] += v
                    cnt[p] += 1
        row = sums[s, lo : lo + n]
        crow = pixel_counts[s, lo : lo + n]
        if per_train_mean:
            for p in range(n):
                if cnt[p] > 0:
                    row[p] += acc[p] / cnt[p]
                    crow[p] += 1
        else:
            for p in range(n):
                row[p] += acc[p]
                crow[p] += cnt[p]


@njit(nogil=True, cache=True, parallel=True)
def add_int(
    frames: np.ndarray,
    slot: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    per_train_mean: bool,
    proto: np.ndarray,
) -> None:
    """Add integer frames into ``sums`` per slot (pixel blocks in parallel).

    Parameters
    ----------
    frames
        ``(n_frames, n_pixels)`` integer (or bool as uint8) frames.
    slot
        ``(n_frames,)`` int64 slot index of each frame, -1 for rejected frames.
    sums
        ``(n_slots, n_pixels)``: int64 (exact mode) or float64 (``per_train_mean``).
    counts
        ``(n_slots,)`` int64: gains the accepted frames per slot (with ``per_train_mean``: one
        per slot with at least one accepted frame).
    per_train_mean
        False: ``sums[s] += sum of the frames of slot s``; True (dssc_process mode):
        ``sums[s] += mean of the frames of slot s in this train``.
    proto
        An empty array whose dtype is the block scratch type (see `scratch_dtype`).
    """
    npix = frames.shape[1]
    nper = _count(slot, counts, sums.shape[0], per_train_mean)
    idx = _frames_of(slot, sums.shape[0])
    nblock = (npix + BLOCK - 1) // BLOCK
    for b in prange(nblock):
        acc = np.empty(BLOCK, proto.dtype)
        lo = b * BLOCK
        _int_block(frames, idx, nper, sums, per_train_mean, acc, lo, min(BLOCK, npix - lo))


@njit(nogil=True, cache=True)
def add_int_serial(
    frames: np.ndarray,
    slot: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    per_train_mean: bool,
    proto: np.ndarray,
) -> None:
    """`add_int` on the calling thread only."""
    npix = frames.shape[1]
    nper = _count(slot, counts, sums.shape[0], per_train_mean)
    idx = _frames_of(slot, sums.shape[0])
    acc = np.empty(BLOCK, proto.dtype)
    for lo in range(0, npix, BLOCK):
        _int_block(frames, idx, nper, sums, per_train_mean, acc, lo, min(BLOCK, npix - lo))


@njit(nogil=True, cache=True, parallel=True)
def add_float(
    frames: np.ndarray,
    slot: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    pixel_counts: np.ndarray,
    per_train_mean: bool,
) -> None:
    """Add float frames into float64 ``sums`` per slot, skipping NaN pixels (in parallel).

    NaN is a dynamic pixel mask: such values are neither summed nor counted. In exact mode
    ``pixel_counts[s, p]`` gains the number of non-NaN values added at ``p``; with
    ``per_train_mean`` (dssc_process mode) ``sums[s, p]`` gains this train's NaN-skipping mean of
    slot ``s`` at ``p`` and ``pixel_counts[s, p]`` gains one when that mean exists. ``counts``
    as in `add_int`.
    """
    npix = frames.shape[1]
    nper = _count(slot, counts, sums.shape[0], per_train_mean)
    nblock = (npix + BLOCK - 1) // BLOCK
    for b in prange(nblock):
        acc = np.empty(BLOCK, np.float64)
        cnt = np.empty(BLOCK, np.int64)
        lo = b * BLOCK
        n = min(BLOCK, npix - lo)
        _float_block(frames, slot, nper, sums, pixel_counts, per_train_mean, acc, cnt, lo, n)


@njit(nogil=True, cache=True)
def add_float_serial(
    frames: np.ndarray,
    slot: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    pixel_counts: np.ndarray,
    per_train_mean: bool,
) -> None:
    """`add_float` on the calling thread only."""
    npix = frames.shape[1]
    nper = _count(slot, counts, sums.shape[0], per_train_mean)
    acc = np.empty(BLOCK, np.float64)
    cnt = np.empty(BLOCK, np.int64)
    for lo in range(0, npix, BLOCK):
        n = min(BLOCK, npix - lo)
        _float_block(frames, slot, nper, sums, pixel_counts, per_train_mean, acc, cnt, lo, n)
