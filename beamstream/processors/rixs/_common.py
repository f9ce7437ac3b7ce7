"""Configuration pieces shared by the RIXS processors: ROI, dark, slots, energy axis, monitor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.arrays import load_array, split_dataset
from beamstream.processors.base import TrainView
from beamstream.processors.params import (
    ParamError,
    finite_float,
    float_range,
    positive_int,
    string_list,
)

__all__ = [
    "DetectorSetup",
    "resolve_setup",
    "Roi",
    "parse_roi",
    "parse_frame_shape",
    "parse_dark",
    "EnergyAxis",
    "parse_energy_axis",
    "SlotMap",
    "frame_monitor",
    "check_frames",
]


def _index_pair(key: str, value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not 0 <= value[0] < value[1]
    ):
        raise ParamError(key, "a [start, stop) pair of pixel indices with 0 <= start < stop", value)
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class Roi:
    """Region of interest: half-open pixel ranges along ``y`` (energy) and ``x``; None = all."""

    y: tuple[int, int] | None = None
    x: tuple[int, int] | None = None

    def resolve(self, shape: tuple[int, int], min_size: int = 1) -> tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)`` for frames of ``shape`` (y, x).

        Raises
        ------
        ParamError
            When the ROI leaves the frame or is smaller than ``min_size`` pixels along an axis.
        """
        ny, nx = (int(s) for s in shape)
        y0, y1 = self.y if self.y is not None else (0, ny)
        x0, x1 = self.x if self.x is not None else (0, nx)
        if y1 > ny or x1 > nx:
            raise ParamError(
                "roi",
                f"a region inside the {ny}x{nx} (y, x) frame",
                {"y": [y0, y1], "x": [x0, x1]},
            )
        if y1 - y0 < min_size or x1 - x0 < min_size:
            raise ParamError(
                "roi", f"at least {min_size}x{min_size} pixels", {"y": [y0, y1], "x": [x0, x1]}
            )
        return y0, y1, x0, x1

    def as_meta(self) -> tuple[int, ...]:
        """``(y0, y1, x0, x1)`` with -1 for an unset range (for state metadata)."""
        y = self.y or (-1, -1)
        x = self.x or (-1, -1)
        return (*y, *x)


def parse_roi(value: Any) -> Roi:
    """Validate ``roi = {x = [x0, x1], y = [y0, y1]}`` (either key optional) or None."""
    if value is None:
        return Roi()
    if not isinstance(value, Mapping) or not set(value) <= {"x", "y"}:
        raise ParamError("roi", "a table {x = [start, stop], y = [start, stop]}", value)
    y = _index_pair("roi.y", value["y"]) if "y" in value else None
    x = _index_pair("roi.x", value["x"]) if "x" in value else None
    return Roi(y, x)


def parse_frame_shape(value: Any) -> tuple[int, int] | None:
    """Validate an optional ``frame_shape = [ny, nx]``."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ParamError("frame_shape", "a [ny, nx] pair of positive integers", value)
    return positive_int("frame_shape", value[0]), positive_int("frame_shape", value[1])


def parse_dark(value: Any) -> str | np.ndarray | None:
    """Validate ``dark``: None, ``"slots"``, a 2-D image or a file of one (`load_array`)."""
    if value is None:
        return None
    if isinstance(value, str) and value == "slots":
        return "slots"
    if isinstance(value, str | Path) and not Path(split_dataset(str(value))[0]).is_file():
        raise ParamError("dark", "'slots' or the path of an existing image file", str(value))
    arr = np.asarray(load_array("dark", value))
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise ParamError("dark", "a 2-D numeric image (y, x) of the full frame", arr.shape)
    return np.ascontiguousarray(arr, dtype=np.float64)


@dataclass(frozen=True)
class EnergyAxis:
    """Fixed bins in corrected-pixel space and their energy calibration.

    Bin ``e`` covers ``[lo + e*width, lo + (e+1)*width)`` corrected pixels; its energy is
    ``intercept + slope * centre`` (eV), or the corrected pixel centre without a calibration.
    """

    lo: float
    hi: float
    nb: int
    intercept: float | None = None
    slope: float | None = None

    @property
    def width(self) -> float:
        return (self.hi - self.lo) / self.nb

    @property
    def edges(self) -> np.ndarray:
        """Bin edges in corrected pixels."""
        return np.linspace(self.lo, self.hi, self.nb + 1)

    @property
    def centres(self) -> np.ndarray:
        """Bin centres in corrected pixels."""
        return self.lo + (np.arange(self.nb) + 0.5) * self.width

    def coordinate(self, sel: slice = slice(None)) -> tuple[np.ndarray, str]:
        """Energy coordinate of the bins ``sel`` and its unit (``eV`` or ``px``)."""
        c = self.centres[sel]
        if self.slope is None:
            return c, "px"
        return self.intercept + self.slope * c, "eV"

    def as_meta(self) -> tuple[float, ...]:
        return (self.lo, self.hi, float(self.nb))


def parse_energy_axis(
    bins: Any, pixel_range: Any, calibration: Any, y_range: tuple[int, int] | None
) -> EnergyAxis:
    """Resolve ``bins`` / ``pixel_range`` / ``energy_calibration``.

    ``pixel_range`` defaults to the pixel areas of the ROI's ``y`` range,
    ``[y0 - 0.5, y1 - 0.5]``; ``bins`` defaults to one bin per pixel of that range.
    """
    if pixel_range is not None:
        lo, hi = float_range("pixel_range", pixel_range)
    elif y_range is not None:
        lo, hi = y_range[0] - 0.5, y_range[1] - 0.5
    else:
        raise ParamError(
            "pixel_range",
            "a [low, high] pair (or a roi.y range, frame_shape or dark image to derive it from)",
            None,
        )
    nb = positive_int("bins", bins) if bins is not None else max(1, int(round(hi - lo)))
    if calibration is None:
        return EnergyAxis(lo, hi, nb)
    if not isinstance(calibration, list | tuple) or len(calibration) != 2:
        raise ParamError(
            "energy_calibration", "an [intercept, slope] pair (eV, eV/px)", calibration
        )
    intercept = finite_float("energy_calibration", calibration[0])
    slope = finite_float("energy_calibration", calibration[1])
    if slope == 0:
        raise ParamError("energy_calibration", "a non-zero slope", calibration)
    return EnergyAxis(lo, hi, nb, intercept, slope)


class SlotMap:
    """Maps frame-pattern slots to spectrum rows; slots whose name contains 'dark' are darks.

    Parameters
    ----------
    slots
        Configured slot names (``slots`` key); the non-dark ones are the spectrum rows.
    """

    def __init__(self, slots: Any):
        names = string_list("slots", ["image"] if slots is None else slots)
        if len(set(names)) != len(names):
            raise ParamError("slots", "distinct slot names", list(names))
        self.slots = names
        self.spectral = tuple(s for s in names if "dark" not in s)
        if not self.spectral:
            raise ParamError("slots", "at least one slot that is not a dark slot", list(names))
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def codes(self, view_slots: tuple[str, ...]) -> np.ndarray:
        """Per slot of a view: spectrum row, or -1 for a dark slot.

        Raises
        ------
        ValueError
            For a non-dark slot the processor was not configured with.
        """
        key = tuple(view_slots)
        out = self._cache.get(key)
        if out is None:
            out = np.empty(len(key), dtype=np.int64)
            for i, s in enumerate(key):
                if "dark" in s:
                    out[i] = -1
                elif s in self.spectral:
                    out[i] = self.spectral.index(s)
                else:
                    raise ValueError(
                        f"frame slot {s!r} is not among the configured slots {list(self.slots)}"
                    )
            self._cache[key] = out
        return out

    def frame_rows(self, view: TrainView) -> np.ndarray:
        """Per frame: spectrum row (>= 0), -1 for dark frames, -2 for rejected frames."""
        codes = self.codes(view.slots)
        n = view.n_frames
        if view.frame_slot is None:
            return np.full(n, codes[0], dtype=np.int64)
        fs = np.asarray(view.frame_slot, dtype=np.int64)
        if fs.shape != (n,):
            raise ValueError(f"frame_slot has shape {fs.shape} for {n} frames")
        rows = np.full(n, -2, dtype=np.int64)
        ok = fs >= 0
        rows[ok] = codes[fs[ok]]
        return rows

    def pairs(self) -> list[tuple[int, int]]:
        """``(pumped row, unpumped row)`` for slots named ``*unpumped*`` with a pumped partner."""
        out = []
        for i, s in enumerate(self.spectral):
            if "unpumped" in s:
                p = s.replace("unpumped", "pumped")
                if p in self.spectral:
                    out.append((self.spectral.index(p), i))
        return out


def frame_monitor(view: TrainView) -> np.ndarray | None:
    """The per-frame monitor (float64) from ``view.products['monitor']``, or None."""
    mon = view.products.get("monitor")
    if mon is None:
        return None
    mon = np.asarray(mon, dtype=np.float64).ravel()
    if mon.shape != (view.n_frames,):
        raise ValueError(f"monitor has {mon.size} values for {view.n_frames} frames")
    return mon


def check_frames(view: TrainView) -> np.ndarray:
    """``view.frames`` as a 3-D ``(frame, y, x)`` numeric array."""
    frames = view.frames
    if frames.ndim != 3 or not np.issubdtype(frames.dtype, np.number):
        raise ValueError(
            f"RIXS processors need (frame, y, x) numeric frames, got {frames.dtype} {frames.shape}"
        )
    if np.issubdtype(frames.dtype, np.complexfloating):
        raise ValueError("complex frames are not supported")
    return frames


@dataclass(frozen=True)
class DetectorSetup:
    """What both RIXS processors derive from ``dark``, ``frame_shape``, ROI and energy bins."""

    dark_mode: str  # "none", "slots" or "image"
    dark_image: np.ndarray | None
    frame_shape: tuple[int, int] | None
    axis: EnergyAxis


def resolve_setup(
    dark: Any,
    frame_shape: Any,
    roi: Roi,
    bins: Any,
    pixel_range: Any,
    energy_calibration: Any,
    min_size: int | None = None,
) -> DetectorSetup:
    """Validate the dark and frame shape together and resolve the energy axis.

    A dark image fixes the frame shape (and must agree with a given ``frame_shape``); a known
    shape resolves the ROI, whose ``y`` range is the default pixel range of the energy bins.
    """
    dark_v = parse_dark(dark)
    mode = "none" if dark_v is None else ("slots" if isinstance(dark_v, str) else "image")
    image = dark_v if mode == "image" else None
    shape = parse_frame_shape(frame_shape)
    if image is not None:
        if shape is not None and image.shape != shape:
            raise ParamError("dark", f"an image of frame_shape {list(shape)}", image.shape)
        shape = image.shape
    y_range = roi.y
    if shape is not None:
        y0, y1, _, _ = roi.resolve(shape) if min_size is None else roi.resolve(shape, min_size)
        y_range = (y0, y1)
    return DetectorSetup(
        mode, image, shape, parse_energy_axis(bins, pixel_range, energy_calibration, y_range)
    )
