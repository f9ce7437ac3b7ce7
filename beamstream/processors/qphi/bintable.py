"""Bins and the pixel -> bin tables of the q-phi integration, built once and cached.

Bin convention (pyFAI's): an axis ``[lo, hi]`` with ``npt`` bins has the inclusive upper
bound ``hi' = hi * (1 + eps32)`` (``hi / (1 + eps32)`` for ``hi <= 0``), width
``(hi' - lo) / npt`` and centres ``lo + (i + 1/2) width``; a position ``x`` is in bin
``floor((x - lo) / width)`` when that is in ``[0, npt)``. Unlike pyFAI we floor (pyFAI truncates
toward zero, which puts positions just below ``lo`` into bin 0).

A `Table` lists the valid pixels of one detector for one output (2-D ``(phi, q)`` or 1-D ``q``) in
pixel order: pixel index, bin (or CSC bins and coefficients for ``split="bbox"``), normalization
``solid angle * polarization * flat`` (float32, pyFAI's model), dark, and the static per-bin sums of
normalization and pixel count.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ._bbox_kernels import bbox_counts, bbox_fill
from .geometry import DetectorGeometry

__all__ = [
    "Axis",
    "Grid",
    "DetectorInputs",
    "Table",
    "get_table",
    "clear_cache",
    "EPS32",
    "array_digest",
]

EPS32 = 1.0 + float(np.finfo(np.float32).eps)


def upper_bound(hi: float) -> float:
    """pyFAI's inclusive upper bound of a range."""
    return hi * EPS32 if hi > 0 else hi / EPS32


@dataclass(frozen=True)
class Axis:
    """Regular bins over ``[lo, hi]`` (pyFAI convention, see module doc)."""

    lo: float
    hi: float
    npt: int

    @property
    def delta(self) -> float:
        return (upper_bound(self.hi) - self.lo) / self.npt

    def centers(self) -> np.ndarray:
        return self.lo + (np.arange(self.npt) + 0.5) * self.delta

    def edges(self) -> np.ndarray:
        return self.lo + np.arange(self.npt + 1) * self.delta

    def fbin(self, x: np.ndarray) -> np.ndarray:
        """Fractional bin position of ``x``."""
        return (x - self.lo) / self.delta

    def index(self, x: np.ndarray) -> np.ndarray:
        """Bin index of ``x`` (int64), -1 outside ``[0, npt)`` or for non-finite ``x``."""
        with np.errstate(invalid="ignore"):
            f = np.floor(self.fbin(x))
            ok = (f >= 0) & (f < self.npt)
        out = np.full(np.shape(x), -1, dtype=np.int64)
        out[ok] = f[ok].astype(np.int64)
        return out


@dataclass(frozen=True)
class Grid:
    """The common output grid: q axis (in ``unit``) and azimuth axis (radians internally).

    ``azimuth`` is ``"chi"`` (pyFAI) or ``"phi"`` (py4xs, phi = -chi). ``phi`` is ``Axis`` in
    radians; its ``centers`` are reported in degrees.
    """

    q: Axis
    phi: Axis
    q1d: Axis
    unit: str
    azimuth: str

    def describe(self) -> dict[str, object]:
        return {
            "q": [self.q.lo, self.q.hi, self.q.npt],
            "q1d": [self.q1d.lo, self.q1d.hi, self.q1d.npt],
            "phi_rad": [self.phi.lo, self.phi.hi, self.phi.npt],
            "unit": self.unit,
            "azimuth": self.azimuth,
        }


@dataclass(frozen=True, eq=False)
class DetectorInputs:
    """A detector: geometry plus static mask (non-zero = bad), dark, flat (each of its shape)."""

    geometry: DetectorGeometry
    mask: np.ndarray | None = None
    dark: np.ndarray | None = None
    flat: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("mask", "dark", "flat"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != self.geometry.shape:
                raise ValueError(
                    f"{name}: shape {arr.shape} does not match the detector shape "
                    f"{self.geometry.shape}"
                )

    def digest(self) -> str:
        """Hash of geometry and static inputs (computed once)."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            h = hashlib.sha1(self.geometry.fingerprint().encode())
            for name in ("mask", "dark", "flat"):
                h.update(name.encode() + array_digest(getattr(self, name)).encode())
            cached = h.hexdigest()[:16]
            object.__setattr__(self, "_digest", cached)
        return cached


def array_digest(arr: np.ndarray | None) -> str:
    if arr is None:
        return "none"
    a = np.ascontiguousarray(arr)
    return hashlib.sha1(a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes()).hexdigest()


@dataclass(frozen=True, eq=False)
class Table:
    """Valid pixels of one detector for one output, in pixel order.

    Attributes
    ----------
    pix
        int32 pixel index into the flattened frame.
    idx
        int32 bin index (no split) or None.
    ptr, bins, coef
        CSC table for pixel splitting (``ptr`` int64 of length ``len(pix) + 1``), or None.
    norm
        float32 normalization per pixel (solid angle * polarization * flat).
    dark
        float32 dark per pixel, or None.
    sum_norm, count
        float64 static per-bin sums of ``coef * norm`` and ``coef`` over the table.
    nbins
        Number of bins of the output.
    """

    pix: np.ndarray
    idx: np.ndarray | None
    ptr: np.ndarray | None
    bins: np.ndarray | None
    coef: np.ndarray | None
    norm: np.ndarray
    dark: np.ndarray | None
    sum_norm: np.ndarray
    count: np.ndarray
    nbins: int

    @property
    def split(self) -> bool:
        return self.ptr is not None


_CACHE: OrderedDict[tuple, Table] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 16


def clear_cache() -> None:
    """Forget all cached tables."""
    with _CACHE_LOCK:
        _CACHE.clear()


def get_table(
    det: DetectorInputs,
    grid: Grid,
    dim: int,
    split: str,
    polarization: tuple[float, float] | None,
    dummy: tuple[float, float] | None,
    solid_angle: bool = True,
) -> Table:
    """The cached table of ``det`` for the ``dim``-D output (2: (phi, q), 1: q).

    Parameters
    ----------
    det
        Detector geometry and static inputs.
    grid
        Output bins.
    dim
        2 for the (phi, q) output, 1 for the q output.
    split
        ``"no"`` or ``"bbox"``.
    polarization
        ``(factor, axis_offset [rad])`` or None for no correction.
    dummy
        ``(dummy, delta_dummy)``: dark/flat pixels equal to the dummy are masked; or None.
    solid_angle
        Divide by pyFAI's relative solid angle (``correctSolidAngle``).
    """
    key = (det.digest(), repr(grid.describe()), dim, split, polarization, dummy, solid_angle)
    with _CACHE_LOCK:
        table = _CACHE.get(key)
        if table is not None:
            _CACHE.move_to_end(key)
            return table
    table = _build(det, grid, dim, split, polarization, dummy, solid_angle)
    with _CACHE_LOCK:
        _CACHE[key] = table
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return table


def static_valid(
    det: DetectorInputs,
    polarization: tuple[float, float] | None,
    dummy: tuple[float, float] | None,
    solid_angle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Flattened ``(valid, norm)``: pixels not statically masked and their normalization."""
    arr = det.geometry.arrays()
    norm = arr.solid_angle if solid_angle else np.ones(det.geometry.shape, np.float32)
    if polarization is not None:
        norm = norm * arr.polarization(*polarization)
    if det.flat is not None:
        norm = norm * det.flat.astype(np.float32)
    norm = np.ascontiguousarray(norm, dtype=np.float32).ravel()
    valid = np.isfinite(norm) & (norm != 0)
    valid &= np.isfinite(arr.q_m.ravel()) & np.isfinite(arr.chi.ravel())
    if det.mask is not None:
        valid &= det.mask.ravel() == 0
    for name in ("dark", "flat"):
        a = getattr(det, name)
        if a is None:
            continue
        a = a.ravel().astype(np.float64)
        valid &= np.isfinite(a)
        if dummy is not None:
            valid &= ~(np.abs(a - dummy[0]) <= dummy[1])
    return valid, norm


def _azimuth(det: DetectorInputs, grid: Grid) -> np.ndarray:
    chi = det.geometry.arrays().chi.ravel()
    return -chi if grid.azimuth == "phi" else chi


def _build(
    det: DetectorInputs,
    grid: Grid,
    dim: int,
    split: str,
    polarization: tuple[float, float] | None,
    dummy: tuple[float, float] | None,
    solid_angle: bool,
) -> Table:
    valid, norm = static_valid(det, polarization, dummy, solid_angle)
    q = det.geometry.arrays().q(grid.unit).ravel()
    phi = _azimuth(det, grid)
    qaxis = grid.q if dim == 2 else grid.q1d
    nbins = qaxis.npt * grid.phi.npt if dim == 2 else qaxis.npt
    dark_all = None if det.dark is None else det.dark.astype(np.float32).ravel()
    if split == "no":
        iq = qaxis.index(q)
        ip = grid.phi.index(phi)
        ok = valid & (iq >= 0) & (ip >= 0)
        pix = np.flatnonzero(ok).astype(np.int32)
        idx = (ip[ok] * qaxis.npt + iq[ok]) if dim == 2 else iq[ok]
        idx = idx.astype(np.int32)
        nrm = norm[pix]
        sum_norm = np.bincount(idx, weights=nrm.astype(np.float64), minlength=nbins)
        count = np.bincount(idx, minlength=nbins).astype(np.float64)
        return Table(
            pix,
            idx,
            None,
            None,
            None,
            nrm,
            None if dark_all is None else dark_all[pix],
            sum_norm,
            count,
            nbins,
        )
    dq, dchi = det.geometry.deltas(grid.unit)
    pix, ptr, bins, coef = _bbox_csc(valid, q, dq.ravel(), phi, dchi.ravel(), qaxis, grid.phi, dim)
    nrm = norm[pix]
    owner = np.repeat(np.arange(len(pix)), np.diff(ptr))
    sum_norm = np.bincount(bins, weights=coef * nrm[owner].astype(np.float64), minlength=nbins)
    count = np.bincount(bins, weights=coef, minlength=nbins)
    return Table(
        pix,
        None,
        ptr,
        bins,
        coef,
        nrm,
        None if dark_all is None else dark_all[pix],
        sum_norm,
        count,
        nbins,
    )


def _bbox_csc(
    valid: np.ndarray,
    q: np.ndarray,
    dq: np.ndarray,
    phi: np.ndarray,
    dphi: np.ndarray,
    qaxis: Axis,
    phiaxis: Axis,
    dim: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounding-box splitting (pyFAI ``splitBBox``): the box ``[q +- dq] x [phi +- dphi]`` spread
    over the bins it overlaps, in proportion to overlap length (1-D) or area (2-D)."""
    fq0, fq1 = qaxis.fbin(q - dq), qaxis.fbin(q + dq)
    keep = valid & (fq1 >= 0) & (fq0 < qaxis.npt)
    fp0, fp1 = phiaxis.fbin(phi - dphi), phiaxis.fbin(phi + dphi)
    if dim == 2:
        keep &= (fp1 >= 0) & (fp0 < phiaxis.npt)
    else:
        # 1-D output: the azimuth range only selects pixels (pyFAI's pos1 check)
        keep &= (phi + dphi >= phiaxis.lo) & (phi - dphi <= phiaxis.hi)
    pix = np.flatnonzero(keep)
    two_d = dim == 2
    args = (
        np.ascontiguousarray(fq0[pix], dtype=np.float64),
        np.ascontiguousarray(fq1[pix], dtype=np.float64),
        np.ascontiguousarray(fp0[pix] if two_d else fq0[:0], dtype=np.float64),
        np.ascontiguousarray(fp1[pix] if two_d else fq1[:0], dtype=np.float64),
        qaxis.npt,
        phiaxis.npt,
        two_d,
    )
    counts = np.empty(len(pix), dtype=np.int64)
    bbox_counts(*args, counts)
    ptr = np.zeros(len(pix) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    bins = np.empty(ptr[-1], dtype=np.int32)
    coef = np.empty(ptr[-1], dtype=np.float64)
    bbox_fill(*args, ptr, bins, coef)
    return pix.astype(np.int32), ptr, bins, coef
