"""`EnergyIntegrator`: high-flux RIXS spectra by proportional distribution of pixel intensities."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from beamstream.processors.base import Accumulator, Result, TrainView
from beamstream.processors.params import ParamError, non_negative_int
from beamstream.processors.rixs._common import (
    SlotMap,
    check_frames,
    frame_monitor,
    parse_roi,
    resolve_setup,
)
from beamstream.processors.rixs._integrate_kernels import integrate_frames, overlap_table
from beamstream.processors.rixs.curvature import parse_curvature
from beamstream.processors.state import BinnedState

__all__ = ["EnergyIntegrator"]


class EnergyIntegrator(Accumulator[BinnedState]):
    """Integrate each frame over the curvature-corrected energy bins (toolbox_scs ``integrate``).

    Every ROI pixel ``(y, x)`` covers ``[y' - 1/2, y' + 1/2)`` with ``y' = y - (a*x + b*x**2)``; its
    intensity is shared among the bins that interval overlaps in proportion to the overlap. The
    state holds, per scan bin, slot and kept energy bin, ``signal = sum w*I`` and ``weight = sum
    w`` over frames and finite pixels; ``spectrum = signal / weight`` is the mean intensity of one
    pixel (a constant image gives a constant spectrum). ``margin`` bins are dropped at both ends.

    Parameters
    ----------
    name
        Instance name, prefix of the result names.
    roi, frame_shape
        As for `PhotonCentroider`.
    curvature
        ``[a, b]`` in detector pixel coordinates.
    energy_calibration
        ``[intercept, slope]``, ``E = intercept + slope * y'``.
    bins, pixel_range
        Bins over ``[low, high)`` corrected pixels (default one per ROI row,
        ``[y0 - 0.5, y1 - 0.5)``); any bin width works (a pixel then spans ``ceil(1/width) + 1``
        bins at most).
    margin
        Bins dropped at each end (default 10, as toolbox_scs); ``2*margin < bins``.
    dark
        None, a full-frame ``.npy`` path or 2-D array (subtracted per pixel), or ``"slots"``: the
        dark-slot frames are integrated separately (over all scan bins) and their mean spectrum is
        subtracted in ``finalize``, which is exact and keeps the state mergeable.
    slots
        Frame-pattern slot names (default ``["image"]``).
    """

    context_keys = ("name", "frame_shape", "slots")
    plot_preference = ("spectrum",)

    def __init__(
        self,
        *,
        name: str = "energy_integrator",
        roi: Any = None,
        frame_shape: Any = None,
        curvature: Any = None,
        energy_calibration: Any = None,
        bins: Any = None,
        pixel_range: Any = None,
        margin: Any = 10,
        dark: Any = None,
        slots: Any = None,
    ):
        if not isinstance(name, str) or not name:
            raise ParamError("name", "a non-empty string", name)
        self.name = name
        self.roi = parse_roi(roi)
        self.curvature = parse_curvature(curvature)
        self.slot_map = SlotMap(slots)
        setup = resolve_setup(dark, frame_shape, self.roi, bins, pixel_range, energy_calibration)
        self.dark_mode, self._dark_image = setup.dark_mode, setup.dark_image
        self.frame_shape, self.axis = setup.frame_shape, setup.axis
        self.margin = non_negative_int("margin", margin)
        if 2 * self.margin >= self.axis.nb:
            raise ParamError("margin", f"less than half of the {self.axis.nb} bins", margin)
        self.n_kept = self.axis.nb - 2 * self.margin
        self._tables: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}

    def describe(self) -> str:
        a, b = self.curvature
        return (
            f"EnergyIntegrator {self.name!r}: curvature a={a:g} b={b:g}, {self.n_kept} of "
            f"{self.axis.nb} bins over [{self.axis.lo:g}, {self.axis.hi:g}) px, "
            f"dark={self.dark_mode}"
        )

    def empty(self) -> BinnedState:
        s, nk = len(self.slot_map.spectral), self.n_kept
        f8, i8 = np.float64, np.int64
        crc = 0
        if self._dark_image is not None:
            crc = zlib.crc32(np.ascontiguousarray(self._dark_image).tobytes())
        meta = {
            "processor": "EnergyIntegrator",
            "roi": self.roi.as_meta(),
            "axis": self.axis.as_meta(),
            "margin": self.margin,
            "curvature": self.curvature,
            "dark": f"{self.dark_mode}:{crc}",
            "slots": self.slot_map.spectral,
        }
        return BinnedState(
            {
                "signal": ((s, nk), f8),
                "weight": ((s, nk), f8),
                "monitor_weight": ((s, nk), f8),
                "frames": ((s,), i8),
                "monitor_sum": ((s,), f8),
                "monitor_frames": ((s,), i8),
                "dark_signal": ((nk,), f8),
                "dark_weight": ((nk,), f8),
                "dark_frames": ((), i8),
            },
            meta=meta,
        )

    def table(
        self, shape: tuple[int, int]
    ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]:
        """ROI ``(y0, y1, x0, x1)``, first bins and fractions per ROI pixel for ``shape`` frames."""
        t = self._tables.get(shape)
        if t is None:
            if self._dark_image is not None and self._dark_image.shape != shape:
                raise ValueError(
                    f"{self.name}: dark image {self._dark_image.shape} but frames {shape}"
                )
            g = self.roi.resolve(shape)
            y0, y1, x0, x1 = g
            a, b = self.curvature
            first, frac = overlap_table(
                y0,
                x0,
                y1 - y0,
                x1 - x0,
                a,
                b,
                self.axis.lo,
                self.axis.width,
                self.axis.nb,
                self.margin,
            )
            t = (g, first, frac)
            self._tables[shape] = t
        return t

    def _dark(self, g: tuple[int, int, int, int]) -> np.ndarray | None:
        if self._dark_image is None:
            return None
        y0, y1, x0, x1 = g
        return np.ascontiguousarray(self._dark_image[y0:y1, x0:x1])

    def _integrate(self, frames, idx, g, first, frac, dark) -> tuple[np.ndarray, np.ndarray]:
        sig = np.empty((idx.size, self.n_kept))
        wt = np.empty((idx.size, self.n_kept))
        has = dark is not None
        integrate_frames(
            frames, idx, g[0], g[2], dark if has else np.zeros((1, 1)), has, first, frac, sig, wt
        )
        return sig, wt

    def update(self, state: BinnedState, view: TrainView) -> None:
        """Integrate the accepted frames of ``view`` into ``state``."""
        if view.frames is None or view.n_frames == 0:
            return
        frames = check_frames(view)
        g, first, frac = self.table(tuple(frames.shape[1:]))
        dark = self._dark(g)
        rows = self.slot_map.frame_rows(view)
        row = state.index(0.0 if view.scan_key is None else view.scan_key)
        dark_idx = np.flatnonzero(rows == -1)
        if dark_idx.size:
            state["dark_frames"][row] += int(dark_idx.size)
            if self.dark_mode == "slots":
                sig, wt = self._integrate(frames, dark_idx, g, first, frac, None)
                state["dark_signal"][row] += sig.sum(axis=0)
                state["dark_weight"][row] += wt.sum(axis=0)
        proc = np.flatnonzero(rows >= 0)
        totals = np.full(view.n_frames, np.nan)
        if proc.size:
            slot = rows[proc]
            sig, wt = self._integrate(frames, proc, g, first, frac, dark)
            np.add.at(state["signal"][row], slot, sig)
            np.add.at(state["weight"][row], slot, wt)
            np.add.at(state["frames"][row], slot, 1)
            mon = frame_monitor(view)
            if mon is not None:
                m = mon[proc]
                good = np.isfinite(m)
                np.add.at(state["monitor_weight"][row], slot[good], m[good, None] * wt[good])
                np.add.at(state["monitor_sum"][row], slot[good], m[good])
                np.add.at(state["monitor_frames"][row], slot[good], 1)
            totals[proc] = sig.sum(axis=1)
        view.records[f"{self.name}.sum_per_frame"] = totals

    def finalize(self, state: BinnedState) -> dict[str, Result]:
        """Mean per-pixel spectra vs energy per (scan, slot), per monitor, and differences."""
        sel = slice(self.margin, self.axis.nb - self.margin)
        energy, eunit = self.axis.coordinate(sel)
        sig, wt = state["signal"], state["weight"]
        dark = np.zeros(self.n_kept)
        dark_sub = False
        if self.dark_mode == "slots":
            dw = state["dark_weight"].sum(axis=0)
            if dw.any():
                with np.errstate(divide="ignore", invalid="ignore"):
                    dark = np.where(dw > 0, state["dark_signal"].sum(axis=0) / dw, 0.0)
                dark_sub = True
        elif self.dark_mode == "image":
            dark_sub = True
        with np.errstate(divide="ignore", invalid="ignore"):
            spec = np.where(wt > 0, sig / wt - dark, np.nan)
            mw = state["monitor_weight"]
            complete = (state["monitor_frames"] == state["frames"]) & (state["frames"] > 0)
            per_mon = np.where(complete[..., None] & (mw != 0), (sig - dark * wt) / mw, np.nan)
        a, b = self.curvature
        attrs = {
            "curvature": [a, b],
            "pixel_edges": self.axis.edges[self.margin : self.axis.nb - self.margin + 1],
            "margin": self.margin,
            "energy_axis": "bin centres",
            "dark_subtracted": dark_sub,
        }
        coords = {
            "scan": state.keys.copy(),
            "slot": np.array(self.slot_map.spectral),
            "energy": energy,
        }
        dims = ("scan", "slot", "energy")

        def res(key, data, dims_=dims, units="", extra=None):
            c = {d: coords[d] for d in dims_ if d in coords}
            c.update(extra or {})
            cu = {"energy": eunit} if "energy" in dims_ else {}
            return Result(key, data, dims_, c, units, cu, dict(attrs))

        out = [
            res("spectrum", spec, units="ADU/pixel"),
            res("spectrum_per_monitor", per_mon, units="ADU/pixel/monitor"),
            res("weight", wt.copy()),
            res("frames", state["frames"].copy(), ("scan", "slot")),
            res("monitor", state["monitor_sum"].copy(), ("scan", "slot")),
            res("dark_frames", state["dark_frames"].copy(), ("scan",)),
        ]
        pairs = self.slot_map.pairs()
        if pairs:
            diff = np.stack([spec[:, p] - spec[:, u] for p, u in pairs], axis=1)
            names = np.array([self.slot_map.spectral[p] for p, _ in pairs])
            out.append(
                res("difference", diff, ("scan", "pair", "energy"), "ADU/pixel", {"pair": names})
            )
        return {r.name: r for r in out}
