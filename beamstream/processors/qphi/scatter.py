"""Per-train sums of the q-phi integrator: every detector's frames through its pixel -> bin table.

`detector_frames` and `frame_slots` fetch and check one detector's frames and the frames'
pattern slots from a train view; `scatter_sums` runs
the numba kernels of `_kernels` over all detectors and returns the sums per destination row (a
slot, or a frame for per-frame products) and bin. The static normalization and counts of the
tables are not included: the caller adds ``n_frames * static sums``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..base import TrainView
from ._kernels import chunking, scatter_nosplit, scatter_split
from .bintable import Table
from .detectors import Detector

__all__ = ["detector_frames", "frame_slots", "scatter_sums"]


def detector_frames(name: str, det: Detector, view: TrainView, nframes: int | None) -> np.ndarray:
    """The frames of ``det`` in ``view`` as a C-contiguous ``(frames, pixels)`` array.

    Parameters
    ----------
    name
        Integrator name, prefixing error messages.
    det
        The detector: ``view.frames`` when its ``source`` is None, else ``train.get(source, key)``.
    view
        The train view.
    nframes
        Frames of the primary detector that this one must match, or None.

    Returns
    -------
    numpy.ndarray
        Native integer or float frames (others converted to float32), one row per frame.

    Raises
    ------
    ValueError
        No frames, or a shape not ``(frames, *detector shape)`` or frame count not ``nframes``.
    """
    if det.source is None:
        arr = view.frames
        if arr is None:
            raise ValueError(f"{name}: the train view has no detector frames")
        where = "view.frames"
    else:
        arr = np.asarray(view.train.get(det.source, det.key))
        where = f"{det.source} {det.key}"
    shape = det.inputs.geometry.shape
    if tuple(arr.shape[1:]) != shape:
        raise ValueError(f"{name}: {where} has shape {arr.shape}; expected (frames, *{shape})")
    if nframes is not None and arr.shape[0] != nframes:
        raise ValueError(
            f"{name}: {where} has {arr.shape[0]} frames, the primary detector {nframes}"
        )
    if arr.dtype.kind not in "uif" or not arr.dtype.isnative:
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr).reshape(arr.shape[0], -1)


def frame_slots(name: str, view: TrainView, nframes: int, slots: Sequence[str]) -> np.ndarray:
    """The int64 slot of each frame (``-1``: rejected); all 0 when the view has no pattern.

    Raises
    ------
    ValueError
        ``view.frame_slot`` not of ``nframes``, or the view's slots not the configured ``slots``.
    """
    ns = len(slots)
    if view.frame_slot is None:
        slot = np.zeros(nframes, dtype=np.int64)
    else:
        slot = np.asarray(view.frame_slot, dtype=np.int64)
        if slot.shape != (nframes,):
            raise ValueError(f"{name}: frame_slot has {slot.shape}, frames {nframes}")
        if len(view.slots) != ns or slot.max(initial=-1) >= ns:
            raise ValueError(f"{name}: view slots {view.slots} do not match the configured {slots}")
    return slot


def scatter_sums(
    tables: Sequence[Table],
    frames: Sequence[np.ndarray],
    dest: np.ndarray,
    ndest: int,
    nbins: int,
    *,
    with_var: bool,
    dummy: tuple[float, float] | None,
    nthreads: int,
    per_frame: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Sums ``(S, Wc, Cc, V)`` of shape ``(ndest, nbins)`` over all detectors.

    Parameters
    ----------
    tables
        One pixel -> bin table per detector, for the output being summed.
    frames
        One ``(nframes, npix)`` array per detector (see `detector_frames`).
    dest
        Destination row of each frame, ``-1`` for a rejected frame.
    ndest
        Number of destination rows.
    nbins
        Number of bins of the output.
    with_var
        Also sum the Poisson variance ``V`` (else V is None).
    dummy
        ``(dummy, delta_dummy)``: raw values to mask dynamically, or None.
    nthreads
        Threads to split the work over.
    per_frame
        One destination per frame (decides the chunking).

    Returns
    -------
    tuple
        Signal ``S``, dynamic normalization and count corrections ``Wc``, ``Cc`` (zero or
        negative), and variance ``V`` or None.
    """
    nb = nbins
    S = np.zeros((ndest, nb))
    Wc = np.zeros((ndest, nb))
    Cc = np.zeros((ndest, nb))
    V = np.zeros((ndest, nb)) if with_var else None
    ok = dest >= 0
    order = np.flatnonzero(ok)
    order = order[np.argsort(dest[order], kind="stable")].astype(np.int64)
    odest = dest[order].astype(np.int64)
    check_dummy = dummy is not None
    dummy_value, ddummy = dummy if check_dummy else (0.0, 0.0)
    for t, fr in zip(tables, frames, strict=True):
        f0, f1, p0, p1, base, nblocks = chunking(len(order), len(t.pix), nthreads, per_frame, ndest)
        if nblocks == 1:
            s, wc, cc, v = S, Wc, Cc, V
        else:
            s = np.zeros((nblocks * ndest, nb))
            wc = np.zeros((nblocks * ndest, nb))
            cc = np.zeros((nblocks * ndest, nb))
            v = np.zeros((nblocks * ndest, nb)) if with_var else None
        v_arg = v if v is not None else np.zeros((1, 1))
        use_dark = t.dark is not None
        dark = t.dark if use_dark else np.zeros(1, np.float32)
        # the pixels of this detector in frame order, then per-pixel tables, then outputs
        head = (fr, order, odest, f0, f1, p0, p1, base, t.pix)
        tail = (dark, use_dark, with_var, check_dummy, dummy_value, ddummy, s, v_arg, wc, cc)
        if t.split:
            scatter_split(*head, t.ptr, t.bins, t.coef, t.norm, *tail)
        else:
            scatter_nosplit(*head, t.idx, t.norm, *tail)
        if nblocks > 1:
            S += s.reshape(nblocks, ndest, nb).sum(axis=0)
            Wc += wc.reshape(nblocks, ndest, nb).sum(axis=0)
            Cc += cc.reshape(nblocks, ndest, nb).sum(axis=0)
            if with_var:
                V += v.reshape(nblocks, ndest, nb).sum(axis=0)
    return S, Wc, Cc, V
