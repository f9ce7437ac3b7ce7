"""`PhotonCentroider`: single-photon counting RIXS spectra (hRIXS ``xfel``, ESRF ``esrf`` mode)."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from beamstream.processors.base import Accumulator, Result, TrainView
from beamstream.processors.params import ParamError, non_negative_int, one_of, positive_int
from beamstream.processors.rixs._common import (
    SlotMap,
    check_frames,
    frame_monitor,
    parse_roi,
    resolve_setup,
)
from beamstream.processors.rixs._detect_kernels import detect_xfel
from beamstream.processors.rixs._esrf_kernel import detect_esrf
from beamstream.processors.rixs._histogram_kernel import histogram_hits
from beamstream.processors.rixs.curvature import correct, parse_curvature
from beamstream.processors.rixs.hitmap import NO_MAP, HitMap
from beamstream.processors.rixs.thresholds import Thresholds
from beamstream.processors.state import BinnedState

__all__ = ["PhotonCentroider", "DEFAULT_HIT_LIST"]


#: hit-list size per train when ``hit_list = true``
DEFAULT_HIT_LIST = 10_000
_MIN_SIZE = {"xfel": 4, "esrf": 3}


class PhotonCentroider(Accumulator[BinnedState]):
    """Find single photons in each frame and histogram their curvature-corrected positions.

    Frames are ``(frame, y, x)`` with ``y`` the dispersive (energy) axis. Per frame: optional dark
    subtraction, detection (``mode``), curvature correction ``y' = y - (a*x + b*x**2)``, and
    histogramming of ``y'`` into fixed bins; double hits count twice in ``spectrum`` and are also
    histogrammed separately. See ``docs/rixs.md``.

    Parameters
    ----------
    name
        Instance name, prefix of the result names.
    mode
        ``"xfel"`` (2x2 sums, 3x3 local maximum, 4x4 centre of mass) or ``"esrf"`` (RixsToolBox
        single-photon counting on 3x3 spots).
    roi
        ``{y = [y0, y1], x = [x0, x1]}`` half-open pixel ranges (each optional, default: all).
    frame_shape
        ``[ny, nx]`` of the frames, to check the ROI at construction (otherwise at the first frame).
    threshold, threshold_sigma, photon_energy, photon_adu, low_fraction, high_fraction, \
single_fraction, double_fraction, double_threshold
        Detection thresholds, see `beamstream.processors.rixs.thresholds`.
    subtract_mean
        Subtract the mean of each (dark-subtracted) ROI before detection.
    curvature
        ``[a, b]``: ``y' = y - (a*x + b*x**2)`` in detector pixel coordinates.
    energy_calibration
        ``[intercept, slope]``: ``E = intercept + slope * y'`` (eV); without it the energy axis is
        in corrected pixels.
    bins, pixel_range
        Histogram bins over ``[low, high)`` corrected pixels; default one bin per pixel over the
        ROI's ``y`` pixels, ``[y0 - 0.5, y1 - 0.5)``.
    dark
        None, a path to a full-frame ``.npy`` dark image, a 2-D array, or ``"slots"``: the running
        mean of the dark-slot frames seen so far (frames before the first dark are skipped and
        counted).
    max_candidates
        Hits stored per frame; a frame with more is left out of the spectra and counted in
        ``overflow_frames`` (its excess hits in ``overflow_hits``).
    hit_list
        False, True (10 000) or the number of hits per train listed in ``view.records``.
    slots
        Frame-pattern slot names (default ``["image"]``); slots containing ``"dark"`` are darks.
    """

    context_keys = ("name", "frame_shape", "slots")
    plot_preference = ("spectrum",)

    def __init__(
        self,
        *,
        name: str = "photon_centroider",
        mode: str = "xfel",
        roi: Any = None,
        frame_shape: Any = None,
        threshold: Any = None,
        threshold_sigma: Any = None,
        photon_energy: Any = None,
        photon_adu: Any = None,
        low_fraction: Any = 0.2,
        high_fraction: Any = 1.0,
        single_fraction: Any = 0.2,
        double_fraction: Any = 1.5,
        double_threshold: Any = None,
        subtract_mean: Any = False,
        curvature: Any = None,
        energy_calibration: Any = None,
        bins: Any = None,
        pixel_range: Any = None,
        dark: Any = None,
        max_candidates: Any = 50_000,
        hit_list: Any = False,
        slots: Any = None,
    ):
        if not isinstance(name, str) or not name:
            raise ParamError("name", "a non-empty string", name)
        self.name = name
        self.mode = one_of("mode", mode, ("xfel", "esrf"))
        self.roi = parse_roi(roi)
        self.thresholds = Thresholds.from_params(
            self.mode,
            threshold=threshold,
            threshold_sigma=threshold_sigma,
            photon_energy=photon_energy,
            photon_adu=photon_adu,
            low_fraction=low_fraction,
            high_fraction=high_fraction,
            single_fraction=single_fraction,
            double_fraction=double_fraction,
            double_threshold=double_threshold,
        )
        if not isinstance(subtract_mean, bool):
            raise ParamError("subtract_mean", "true or false", subtract_mean)
        self.subtract_mean = subtract_mean
        self.curvature = parse_curvature(curvature)
        self.max_candidates = positive_int("max_candidates", max_candidates)
        if hit_list is True:
            self.hit_list = DEFAULT_HIT_LIST
        elif hit_list is False or hit_list is None:
            self.hit_list = 0
        else:
            self.hit_list = non_negative_int("hit_list", hit_list)
        self.slot_map = SlotMap(slots)
        setup = resolve_setup(
            dark,
            frame_shape,
            self.roi,
            bins,
            pixel_range,
            energy_calibration,
            min_size=_MIN_SIZE[self.mode],
        )
        self.dark_mode, self._dark_image = setup.dark_mode, setup.dark_image
        self.frame_shape, self.axis = setup.frame_shape, setup.axis
        self._geom: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self._dark_crop: dict[tuple[int, ...], np.ndarray] = {}
        self._dark_sum: np.ndarray | None = None
        self._dark_n = 0
        #: the accumulated hit map (with the frame shape known at construction)
        self.hit_map = HitMap.of(self.roi, self.frame_shape, self.axis, _MIN_SIZE[self.mode])

    # -- configuration ------------------------------------------------------------------------
    def describe(self) -> str:
        a, b = self.curvature
        return (
            f"PhotonCentroider {self.name!r}: {self.mode} mode, {self.thresholds.describe()}, "
            f"curvature a={a:g} b={b:g}, {self.axis.nb} bins over [{self.axis.lo:g}, "
            f"{self.axis.hi:g}) px, dark={self.dark_mode}"
        )

    def _meta(self) -> dict[str, object]:
        dark_crc = 0
        if self._dark_image is not None:
            dark_crc = zlib.crc32(np.ascontiguousarray(self._dark_image).tobytes())
        return {
            "processor": "PhotonCentroider",
            "mode": self.mode,
            "roi": self.roi.as_meta(),
            "axis": self.axis.as_meta(),
            "curvature": self.curvature,
            "subtract_mean": self.subtract_mean,
            "dark": f"{self.dark_mode}:{dark_crc}",
            "slots": self.slot_map.spectral,
            "max_candidates": self.max_candidates,
            **self.thresholds.meta(),
        }

    def empty(self) -> BinnedState:
        s, nb = len(self.slot_map.spectral), self.axis.nb
        i64 = np.int64
        return BinnedState(
            {
                "single": ((s, nb), i64),
                "double": ((s, nb), i64),
                "n_single": ((s,), i64),
                "n_double": ((s,), i64),
                "frames": ((s,), i64),
                "overflow_frames": ((s,), i64),
                "overflow_hits": ((s,), i64),
                "no_dark_frames": ((s,), i64),
                "monitor_sum": ((s,), np.float64),
                "monitor_frames": ((s,), i64),
                "dark_frames": ((), i64),
                **(self.hit_map.spec(s) if self.hit_map else {}),
            },
            meta=self._meta(),
        )

    def _geometry(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        g = self._geom.get(shape)
        if g is None:
            if self._dark_image is not None and self._dark_image.shape != shape:
                raise ValueError(
                    f"{self.name}: dark image {self._dark_image.shape} but frames {shape}"
                )
            g = self.roi.resolve(shape, _MIN_SIZE[self.mode])
            self._geom[shape] = g
        return g

    def _dark_for(self, g: tuple[int, int, int, int]) -> np.ndarray | None:
        y0, y1, x0, x1 = g
        if self.dark_mode == "image":
            d = self._dark_crop.get(g)
            if d is None:
                d = np.ascontiguousarray(self._dark_image[y0:y1, x0:x1])
                self._dark_crop[g] = d
            return d
        if self.dark_mode == "slots" and self._dark_n > 0:
            return self._dark_sum / self._dark_n
        return None

    # -- the hot path -------------------------------------------------------------------------
    def update(self, state: BinnedState, view: TrainView) -> None:
        """Detect photons in the accepted frames of ``view`` and add them to ``state``."""
        if view.frames is None or view.n_frames == 0:
            return
        frames = check_frames(view)
        g = self._geometry(tuple(frames.shape[1:]))
        y0, y1, x0, x1 = g
        h, w = y1 - y0, x1 - x0
        rows = self.slot_map.frame_rows(view)
        row = state.index(0.0 if view.scan_key is None else view.scan_key)
        n_frames = view.n_frames
        per_frame = np.full(n_frames, -1, dtype=np.int64)
        dbl_frame = np.full(n_frames, -1, dtype=np.int64)
        over_frame = np.full(n_frames, -1, dtype=np.int64)

        dark_idx = np.flatnonzero(rows == -1)
        if self.dark_mode == "slots" and dark_idx.size:
            block = np.asarray(frames[dark_idx, y0:y1, x0:x1], dtype=np.float64).sum(axis=0)
            self._dark_sum = block if self._dark_sum is None else self._dark_sum + block
            self._dark_n += int(dark_idx.size)
        state["dark_frames"][row] += int(dark_idx.size)

        proc = np.flatnonzero(rows >= 0)
        slot = rows[proc]
        dark = self._dark_for(g)
        if self.dark_mode == "slots" and dark is None:
            np.add.at(state["no_dark_frames"][row], slot, 1)
            proc = proc[:0]
            slot = slot[:0]
        n = proc.size
        if n:
            cap = self.max_candidates
            out_y = np.empty((n, cap))
            out_x = np.empty((n, cap))
            out_sum = np.empty((n, cap))
            out_double = np.zeros((n, cap), dtype=np.bool_)
            n_hits = np.zeros(n, dtype=np.int64)
            n_over = np.zeros(n, dtype=np.int64)
            has_dark = dark is not None
            dk = dark if has_dark else np.zeros((1, 1))
            if self.mode == "xfel":
                thr, k, dbl, dbl_f = self.thresholds.xfel(n)
                thr_used = np.empty(n)
                dbl_used = np.empty(n)
                detect_xfel(
                    frames, proc, y0, x0, h, w, dk, has_dark, self.subtract_mean,
                    thr, k, dbl, dbl_f, out_y, out_x, out_sum, out_double, n_hits, n_over,
                    thr_used, dbl_used,
                )  # fmt: skip
            else:
                lo, hi, smin, dbl = self.thresholds.esrf()
                detect_esrf(
                    frames, proc, y0, x0, h, w, dk, has_dark, self.subtract_mean,
                    lo, hi, smin, dbl, out_y, out_x, out_sum, out_double, n_hits, n_over,
                )  # fmt: skip
            use = n_over == 0
            a, b = self.curvature
            g = self.hit_map.grid if self.hit_map else None
            histogram_hits(
                n_hits, out_y, out_x, out_double, use, slot, a, b,
                self.axis.lo, 1.0 / self.axis.width,
                state["single"][row], state["double"][row],
                state["n_single"][row], state["n_double"][row],
                g is not None, *(g.scale() if g is not None else NO_MAP[:2]),
                state["hit_map"][row] if g is not None else NO_MAP[2],
            )  # fmt: skip
            np.add.at(state["frames"][row], slot[use], 1)
            np.add.at(state["overflow_frames"][row], slot[~use], 1)
            np.add.at(state["overflow_hits"][row], slot, n_over)
            mon = frame_monitor(view)
            if mon is not None:
                m = mon[proc]
                good = use & np.isfinite(m)
                np.add.at(state["monitor_sum"][row], slot[good], m[good])
                np.add.at(state["monitor_frames"][row], slot[good], 1)
            n_dbl = np.array([out_double[i, : n_hits[i]].sum() for i in range(n)], dtype=np.int64)
            per_frame[proc] = n_hits + n_over
            dbl_frame[proc] = n_dbl
            over_frame[proc] = n_over
            if self.hit_list:
                self._list_hits(view, proc, use, n_hits, out_y, out_x, out_sum, out_double)
        elif self.hit_list:
            self._list_hits(view, proc, np.zeros(0, bool), np.zeros(0, np.int64), *[None] * 4)
        view.records[f"{self.name}.hits_per_frame"] = per_frame
        view.records[f"{self.name}.doubles_per_frame"] = dbl_frame
        view.records[f"{self.name}.overflow_per_frame"] = over_frame
        view.records[f"{self.name}.hits_per_train"] = int(per_frame[per_frame > 0].sum())

    def _list_hits(self, view, proc, use, n_hits, out_y, out_x, out_sum, out_double) -> None:
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("frame", "x", "y", "sum", "double")}
        total = int(n_hits[use].sum()) if len(use) else 0
        room = self.hit_list
        for i in np.flatnonzero(use):
            if room == 0:
                break
            k = min(int(n_hits[i]), room)
            cols["frame"].append(np.full(k, proc[i], dtype=np.int64))
            cols["x"].append(out_x[i, :k])
            cols["y"].append(out_y[i, :k])
            cols["sum"].append(out_sum[i, :k])
            cols["double"].append(out_double[i, :k])
            room -= k
        dtypes = {"frame": np.int64, "double": np.bool_}
        hits = {
            k: (np.concatenate(v) if v else np.zeros(0, dtypes.get(k, np.float64)))
            for k, v in cols.items()
        }
        a, b = self.curvature
        hits["y_corrected"] = correct(hits["y"], hits["x"], a, b)
        view.records[f"{self.name}.hits"] = hits
        view.records[f"{self.name}.hits_truncated"] = total - len(hits["x"])

    # -- results ------------------------------------------------------------------------------
    def finalize(self, state: BinnedState) -> dict[str, Result]:
        """Spectra vs energy per (scan, slot), normalized copies, counts and differences."""
        single = state["single"]
        double = state["double"]
        total = single + 2 * double
        frames = state["frames"]
        energy, eunit = self.axis.coordinate()
        slots = np.array(self.slot_map.spectral)
        coords = {"scan": state.keys.copy(), "slot": slots, "energy": energy}
        dims = ("scan", "slot", "energy")
        cu = {"energy": eunit}
        a, b = self.curvature
        attrs = {
            "mode": self.mode,
            "curvature": [a, b],
            "pixel_edges": self.axis.edges,
            "energy_axis": "bin centres",
            "thresholds": self.thresholds.describe(),
        }
        with np.errstate(divide="ignore", invalid="ignore"):
            per_frame = np.where(frames[..., None] > 0, total / frames[..., None], np.nan)
            msum = state["monitor_sum"]
            complete = (state["monitor_frames"] == frames) & (msum != 0) & (frames > 0)
            per_mon = np.where(complete[..., None], total / msum[..., None], np.nan)

        def res(key, data, dims_=dims, units="", **kw):
            c = {d: coords[d] for d in dims_ if d in coords}
            c.update(kw.pop("coords", {}))
            cunits = {d: u for d, u in cu.items() if d in dims_}
            extra = {"errors": kw.pop("errors")} if "errors" in kw else {}
            return Result(key, data, dims_, c, units, cunits, {**attrs, **extra})

        out = {
            "spectrum": res("spectrum", total, units="photons", errors="poisson"),
            "spectrum_single": res("spectrum_single", single, units="hits", errors="poisson"),
            "spectrum_double": res("spectrum_double", double, units="hits", errors="poisson"),
            "spectrum_per_frame": res("spectrum_per_frame", per_frame, units="photons/frame"),
            "spectrum_per_monitor": res("spectrum_per_monitor", per_mon, units="photons/monitor"),
        }
        for key in ("n_single", "n_double", "frames", "overflow_frames", "overflow_hits"):
            out[key] = res(key, state[key].copy(), ("scan", "slot"), units="")
        out["monitor"] = res("monitor", state["monitor_sum"].copy(), ("scan", "slot"))
        out["dark_frames"] = res("dark_frames", state["dark_frames"].copy(), ("scan",))
        if self.hit_map:
            out["hit_map"] = self.hit_map.result(self.name, state["hit_map"], coords, attrs)
        pairs = self.slot_map.pairs()
        if pairs:
            diff = np.stack([per_frame[:, p] - per_frame[:, u] for p, u in pairs], axis=1)
            out["difference"] = res(
                "difference",
                diff,
                ("scan", "pair", "energy"),
                units="photons/frame",
                coords={"pair": np.array([self.slot_map.spectral[p] for p, _ in pairs])},
            )
        return {r.name: r for r in out.values()}
