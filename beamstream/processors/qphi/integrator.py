"""`QPhiIntegrator`: incremental 2-D (phi, q) cake and 1-D I(q) integration, pyFAI-exact.

State: per scan bin and frame-pattern slot, the sums ``sum_signal``, ``sum_norm``, ``count`` (and
``sum_var`` for Poisson errors) of every (phi, q) and q bin; they merge by addition. ``finalize``
divides: ``I = sum_signal / sum_norm`` (NaN where empty), ``sigma = sqrt(sum_var) / sum_norm``.
See docs/qphi.md for the conventions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numba
import numpy as np

from ..base import Accumulator, Result, TrainView
from ..params import ParamError, finite_float, one_of, positive_int, string_list
from ..state import BinnedState
from .bintable import Table, get_table
from .detectors import build_detectors
from .grid import build_grid
from .results import UNIT_LABEL, build_results
from .scatter import detector_frames, frame_slots, scatter_sums
from .units import UNITS

__all__ = ["QPhiIntegrator"]


class QPhiIntegrator(Accumulator[BinnedState]):
    """Azimuthal integration of detector frames into (phi, q) and q bins, per scan bin and slot.

    Parameters
    ----------
    name
        Instance name; prefixes per-train products (``{name}.iq``) and records.
    geometry
        Table describing the primary detector: ``poni`` (path), or flat keywords ``dist, poni1,
        poni2, pixel1, pixel2, shape, rot1, rot2, rot3, wavelength | energy``, or ``positions``
        ((..., 3) x, y, z metres, array or .npy path) with ``dist, beam_center, energy|...``.
    poni
        Shortcut for ``geometry = {poni = ...}``; other geometry keys may still override.
    mask, dark, flat
        Static per-pixel arrays of the primary detector (array, .npy, ``file.h5:/dataset``).
        Mask: non-zero = bad.
    detectors
        Further detectors onto the same grid: tables with ``geometry``/``poni``, ``mask``,
        ``dark``, ``flat``, and ``source``, ``key`` (data looked up with ``train.get``). An entry
        without ``source`` reads ``view.frames`` (then no top-level geometry may be given).
    source, key
        Where the primary detector's frames are (default: ``view.frames``).
    npt_q, npt_phi
        Bins of the 2-D output (q, azimuth).
    npt_q_1d
        Bins of the 1-D output (default ``npt_q``).
    q_range
        ``[lo, hi]`` in ``unit``; default: min and max q of the valid pixels (all detectors).
    phi_range
        ``[lo, hi]`` in degrees (in the ``azimuth`` convention), default ``[-180, 180]``.
    unit
        ``"q_nm^-1"`` (default) or ``"q_A^-1"``.
    azimuth
        ``"chi"`` (pyFAI's chi, default) or ``"phi"`` (py4xs convention, phi = -chi).
    polarization_factor
        pyFAI's polarization factor in [-1, 1], or None for no correction.
    polarization_axis_offset
        Offset of the polarization axis, radians (pyFAI's ``axis_offset``).
    solid_angle
        Correct for the relative solid angle (default True).
    split
        ``"no"`` (default; bin-comparable with pyFAI's no-split) or ``"bbox"``.
    dummy, delta_dummy
        Raw (or dark, flat) values equal to ``dummy`` (within ``delta_dummy``) are masked.
    error_model
        ``"poisson"`` (variance = max(1, raw), as pyFAI; default) or ``"none"``.
    per_frame
        ``"none"``, ``"iq"`` (per-frame I(q) in ``view.products[f"{name}.iq"]``) or ``"iqphi"``
        (also I(phi, q) in ``view.products[f"{name}.iqphi"]``).
    outputs
        Which sums to keep: subset of ``["iqphi", "iq"]`` (default both).
    slots
        Frame-pattern slot names (the pipeline passes them).
    nthreads
        Threads for the kernels (default: numba's thread count).
    """

    context_keys = ("name", "slots")
    plot_preference = ("I_q", "I_qphi")

    def __init__(
        self,
        *,
        name: str = "qphi",
        geometry: Mapping[str, Any] | None = None,
        poni: str | None = None,
        mask: Any = None,
        dark: Any = None,
        flat: Any = None,
        detectors: Sequence[Mapping[str, Any]] | None = None,
        source: str | None = None,
        key: str | None = None,
        npt_q: int = 500,
        npt_phi: int = 360,
        npt_q_1d: int | None = None,
        q_range: Sequence[float] | None = None,
        phi_range: Sequence[float] = (-180.0, 180.0),
        unit: str = "q_nm^-1",
        azimuth: str = "chi",
        polarization_factor: float | None = None,
        polarization_axis_offset: float = 0.0,
        solid_angle: bool = True,
        split: str = "no",
        dummy: float | None = None,
        delta_dummy: float = 0.0,
        error_model: str = "poisson",
        per_frame: str = "none",
        outputs: Sequence[str] = ("iqphi", "iq"),
        slots: Sequence[str] = ("image",),
        nthreads: int | None = None,
    ):
        if not isinstance(name, str) or not name:
            raise ParamError("name", "a non-empty string", name)
        self.name = name
        self.npt_q = positive_int("npt_q", npt_q)
        self.npt_phi = positive_int("npt_phi", npt_phi)
        self.npt_q_1d = self.npt_q if npt_q_1d is None else positive_int("npt_q_1d", npt_q_1d)
        self.unit = UNITS[one_of("unit", unit, list(UNITS))]
        self.azimuth = one_of("azimuth", azimuth, ["chi", "phi"])
        self.split = one_of("split", split, ["no", "bbox"])
        self.error_model = one_of("error_model", error_model, ["poisson", "none"])
        self.per_frame = one_of("per_frame", per_frame, ["none", "iq", "iqphi"])
        self.outputs = string_list("outputs", list(outputs))
        if not self.outputs or any(o not in ("iqphi", "iq") for o in self.outputs):
            raise ParamError("outputs", "a non-empty subset of ['iqphi', 'iq']", list(outputs))
        if self.per_frame == "iq" and "iq" not in self.outputs:
            raise ParamError("per_frame", "'iq' only with 'iq' in outputs", per_frame)
        if self.per_frame == "iqphi" and set(self.outputs) != {"iq", "iqphi"}:
            raise ParamError("per_frame", "'iqphi' only with outputs ['iqphi', 'iq']", per_frame)
        self.slots = string_list("slots", list(slots))
        if not self.slots:
            raise ParamError("slots", "at least one slot name", list(slots))
        if not isinstance(solid_angle, bool):
            raise ParamError("solid_angle", "true or false", solid_angle)
        self.solid_angle = solid_angle
        if polarization_factor is None:
            self.polarization: tuple[float, float] | None = None
        else:
            f = finite_float("polarization_factor", polarization_factor)
            if not -1.0 <= f <= 1.0:
                raise ParamError("polarization_factor", "a number in [-1, 1]", polarization_factor)
            off = finite_float("polarization_axis_offset", polarization_axis_offset)
            self.polarization = (f, off)
        self.dummy = None
        if dummy is not None:
            dd = finite_float("delta_dummy", delta_dummy)
            if dd < 0:
                raise ParamError("delta_dummy", "a non-negative number", delta_dummy)
            self.dummy = (finite_float("dummy", dummy), dd)
        self.nthreads = (
            numba.get_num_threads() if nthreads is None else positive_int("nthreads", nthreads)
        )
        self.detectors = build_detectors(geometry, poni, mask, dark, flat, detectors, source, key)
        self.grid = build_grid(
            self.detectors,
            q_range,
            phi_range,
            npt_q=self.npt_q,
            npt_phi=self.npt_phi,
            npt_q_1d=self.npt_q_1d,
            unit=self.unit,
            azimuth=self.azimuth,
            polarization=self.polarization,
            dummy=self.dummy,
            solid_angle=self.solid_angle,
        )
        self._tables: dict[tuple[int, int], Table] = {}
        #: bin centres of the per-frame products (published as ``products["<name>.axes"]``)
        self.axes = {
            "q_1d": self.grid.q1d.centers(),
            "q": self.grid.q.centers(),
            "phi": np.degrees(self.grid.phi.centers()),
        }

    # -- configuration ----------------------------------------------------------------------
    def table(self, det: int, dim: int) -> Table:
        """The pixel -> bin table of detector ``det`` for the ``dim``-D output (cached)."""
        t = self._tables.get((det, dim))
        if t is None:
            t = get_table(
                self.detectors[det].inputs,
                self.grid,
                dim,
                self.split,
                self.polarization,
                self.dummy,
                self.solid_angle,
            )
            self._tables[(det, dim)] = t
        return t

    def provides(self) -> set[str]:
        keys = {"iq": ["iq"], "iqphi": ["iq", "iqphi"]}.get(self.per_frame, [])
        return {f"{self.name}.{k}" for k in ["axes", *keys]} if keys else set()

    def describe(self) -> str:
        g = self.grid
        return (
            f"QPhiIntegrator {self.name!r}: {len(self.detectors)} detector(s), "
            f"q {g.q.lo:.4g}..{g.q.hi:.4g} {UNIT_LABEL[self.unit]} x {g.q.npt} "
            f"({g.q1d.npt} in 1-D), {self.azimuth} {math.degrees(g.phi.lo):.4g}.."
            f"{math.degrees(g.phi.hi):.4g} deg x {g.phi.npt}, split={self.split}, "
            f"polarization={self.polarization}, slots={list(self.slots)}"
        )

    def _meta(self) -> dict[str, object]:
        return {
            "processor": "QPhiIntegrator",
            "grid": json.dumps(self.grid.describe(), sort_keys=True),
            "detectors": json.dumps([[d.inputs.digest(), d.source, d.key] for d in self.detectors]),
            "split": self.split,
            "polarization": json.dumps(self.polarization),
            "solid_angle": self.solid_angle,
            "dummy": json.dumps(self.dummy),
            "error_model": self.error_model,
            "slots": json.dumps(list(self.slots)),
        }

    # -- accumulator contract -----------------------------------------------------------------
    def _fields(self) -> dict[str, tuple[tuple[int, ...], type]]:
        ns = len(self.slots)
        f: dict[str, tuple[tuple[int, ...], type]] = {"n_frames": ((ns,), np.int64)}
        names = ["sum_signal", "sum_norm", "count"]
        if self.error_model == "poisson":
            names.append("sum_var")
        if "iqphi" in self.outputs:
            for n in names:
                f[n] = ((ns, self.npt_phi, self.npt_q), np.float64)
        if "iq" in self.outputs:
            for n in names:
                f[n + "_1d"] = ((ns, self.npt_q_1d), np.float64)
        return f

    def empty(self) -> BinnedState:
        """A zero state: no scan bins yet, fields per (slot, phi, q) and (slot, q)."""
        return BinnedState(self._fields(), (), self._meta())

    def _accumulate(
        self, dim: int, frames: list[np.ndarray], dest: np.ndarray, ndest: int, per_frame: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Sums ``(S, Wc, Cc, V)`` of shape (ndest, nbins) over all detectors."""
        return scatter_sums(
            [self.table(i, dim) for i in range(len(frames))],
            frames,
            dest,
            ndest,
            self.npt_phi * self.npt_q if dim == 2 else self.npt_q_1d,
            with_var=self.error_model == "poisson",
            dummy=self.dummy,
            nthreads=self.nthreads,
            per_frame=per_frame,
        )

    def _static(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        tabs = [self.table(i, dim) for i in range(len(self.detectors))]
        return sum(t.sum_norm for t in tabs), sum(t.count for t in tabs)

    def update(self, state: BinnedState, view: TrainView) -> None:
        """Add the accepted frames of one train into ``state`` (in place)."""
        primary = next((d for d in self.detectors if d.source is None), self.detectors[0])
        first = detector_frames(self.name, primary, view, None)
        nframes = first.shape[0]
        frames = [
            first if d is primary else detector_frames(self.name, d, view, nframes)
            for d in self.detectors
        ]
        ns = len(self.slots)
        slot = frame_slots(self.name, view, nframes, self.slots)
        row = state.index(view.scan_key if view.scan_key is not None else 0.0)
        view.products[f"{self.name}.axes"] = self.axes
        ok = slot >= 0
        nper = np.bincount(slot[ok], minlength=ns).astype(np.int64)
        state["n_frames"][row] += nper
        dims = [d for d, o in ((2, "iqphi"), (1, "iq")) if o in self.outputs]
        total_s = total_w = 0.0
        for dim in dims:
            want_pf = self.per_frame == "iqphi" or (dim == 1 and self.per_frame == "iq")
            w0, c0 = self._static(dim)
            suffix = "" if dim == 2 else "_1d"
            tgt = {
                n: state[n + suffix][row].reshape(ns, -1)
                for n in ("sum_signal", "sum_norm", "count")
            }
            if self.error_model == "poisson":
                tgt["sum_var"] = state["sum_var" + suffix][row].reshape(ns, -1)
            if want_pf:
                dest = np.where(ok, np.arange(nframes), -1).astype(np.int64)
                S, Wc, Cc, V = self._accumulate(dim, frames, dest, nframes, True)
                W, C = Wc + w0, Cc + c0
                with np.errstate(invalid="ignore", divide="ignore"):
                    inten = np.where(C > 0, S / W, np.nan)
                inten[~ok] = np.nan
                shape = (
                    (nframes, self.npt_phi, self.npt_q) if dim == 2 else (nframes, self.npt_q_1d)
                )
                self._product(view, "iqphi" if dim == 2 else "iq", inten.reshape(shape))
                for s in range(ns):
                    sel = slot == s
                    if not sel.any():
                        continue
                    tgt["sum_signal"][s] += S[sel].sum(axis=0)
                    tgt["sum_norm"][s] += W[sel].sum(axis=0)
                    tgt["count"][s] += C[sel].sum(axis=0)
                    if V is not None:
                        tgt["sum_var"][s] += V[sel].sum(axis=0)
            else:
                dest = np.where(ok, slot, -1).astype(np.int64)
                S, Wc, Cc, V = self._accumulate(dim, frames, dest, ns, False)
                tgt["sum_signal"] += S
                tgt["sum_norm"] += Wc + nper[:, None] * w0
                tgt["count"] += Cc + nper[:, None] * c0
                if V is not None:
                    tgt["sum_var"] += V
                W = Wc + nper[:, None] * w0
            if dim == dims[-1]:
                total_s, total_w = float(S.sum()), float(W.sum())
        view.records[f"{self.name}.frames"] = int(ok.sum())
        view.records[f"{self.name}.mean_intensity"] = total_s / total_w if total_w > 0 else math.nan

    def _product(self, view: TrainView, what: str, arr: np.ndarray) -> None:
        # for later processors (maps) and, as per-train records, for the sinks
        view.products[f"{self.name}.{what}"] = arr
        view.records[f"{self.name}.{what}"] = arr

    # -- results ------------------------------------------------------------------------------
    def finalize(self, state: BinnedState) -> dict[str, Result]:
        """Intensities, errors, counts and (with pumped/unpumped slots) differences."""
        attrs = {
            "processor": self.name,
            "azimuth": self.azimuth,
            "split": self.split,
            "polarization_factor": None if self.polarization is None else self.polarization[0],
            "normalization": "solid_angle*polarization*flat"
            if self.solid_angle
            else "polarization*flat",
        }
        return build_results(
            state, self.grid, self.slots, self.outputs, self.error_model == "poisson", attrs
        )
