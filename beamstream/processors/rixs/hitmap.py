"""The accumulated hit map of a RIXS camera, and the check that its lines run the configured way.

Curvature-corrected hits ``(y', x)`` are histogrammed (in the centroider's histogram kernel) on a
coarse grid (at most `MAX_BINS` per
side) per scan bin and slot: emission lines are then horizontal stripes at constant ``y'``
(energy). If instead the accumulated hits form stripes at constant ``x`` and none at constant
``y'``, the energy axis of the data is along the columns (as some toolkits keep it) and the
spectrum is meaningless: `line_direction` tells, so that the centroider can warn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from beamstream.processors.base import Result

__all__ = ["HitMap", "HitMapGrid", "line_direction", "hit_map_result", "LAYOUT_HINT", "NO_MAP"]

log = logging.getLogger("beamstream.processors.rixs.centroider")

#: kernel arguments when no map is kept: ``(lo, scale, hit_map)`` placeholders
NO_MAP = (np.zeros(2), np.ones(2), np.zeros((1, 1, 1), np.int32))

MAX_BINS = 128
#: hits needed before the line direction is judged
MIN_HITS = 2000
#: a projection "has a line" when its top bins hold this many times their share of the hits
_PEAK = 4.0

LAYOUT_HINT = (
    "the accumulated hits form lines along y (constant x), none along x: the energy axis of "
    "the data seems to run along x. Declare the source layout so that the dispersive axis is "
    'y, e.g. source.layout = ["frame", "x", "y"] for frames stored as (frame, energy, '
    "non-dispersive) with energy along columns (see docs/rixs.md, 'Axes')"
)


@dataclass(frozen=True)
class HitMapGrid:
    """Bins of the hit map: ``ny`` over ``[y_lo, y_hi)`` corrected pixels, ``nx`` over x."""

    y_lo: float
    y_hi: float
    ny: int
    x_lo: float
    x_hi: float
    nx: int

    @classmethod
    def covering(cls, y_lo: float, y_hi: float, x0: int, x1: int) -> HitMapGrid:
        """A grid over the energy axis range and the ROI's x pixels, at most MAX_BINS a side."""
        ny = max(1, min(MAX_BINS, int(round(y_hi - y_lo))))
        nx = max(1, min(MAX_BINS, x1 - x0))
        return cls(float(y_lo), float(y_hi), ny, x0 - 0.5, x1 - 0.5, nx)

    def scale(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, scale)`` of ``(y', x)``: bin ``floor((v - lo) * scale)`` (for the kernel)."""
        lo = np.array([self.y_lo, self.x_lo])
        scale = np.array([self.ny / (self.y_hi - self.y_lo), self.nx / (self.x_hi - self.x_lo)])
        return lo, scale

    def y_centres(self) -> np.ndarray:
        return self.y_lo + (np.arange(self.ny) + 0.5) * (self.y_hi - self.y_lo) / self.ny

    def x_centres(self) -> np.ndarray:
        return self.x_lo + (np.arange(self.nx) + 0.5) * (self.x_hi - self.x_lo) / self.nx


def _peaked(projection: np.ndarray) -> bool:
    """Whether a 1-D projection has narrow lines: its top 2 % of bins hold >= 4x their share."""
    p = np.sort(np.asarray(projection, dtype=np.float64))[::-1]
    total = p.sum()
    if total <= 0 or p.size < 10:
        return False
    top = max(1, int(round(0.02 * p.size)))
    return p[:top].sum() / total >= _PEAK * top / p.size


def line_direction(hit_map: np.ndarray) -> str | None:
    """``"y"`` or ``"x"``: the axis along which ``hit_map[..., y', x]`` has lines; None if unclear.

    ``"y"`` means stripes at constant y' (lines of constant energy: the expected layout);
    ``"x"`` means stripes at constant x only (energy along x: transposed data).
    """
    m = np.asarray(hit_map, dtype=np.float64).reshape(-1, *np.shape(hit_map)[-2:]).sum(axis=0)
    if m.sum() < MIN_HITS:
        return None
    along_y = _peaked(m.sum(axis=1))  # projection onto y': peaks if lines of constant energy
    along_x = _peaked(m.sum(axis=0))
    if along_y:
        return "y"
    return "x" if along_x else None


def hit_map_result(
    grid: HitMapGrid,
    axis: Any,
    hit_map: np.ndarray,
    coords: dict[str, np.ndarray],
    attrs: dict[str, object],
) -> Result:
    """``hit_map(scan, slot, energy, x)`` [hits]; ``attrs["layout_warning"]`` when its lines run
    along x (see `line_direction`). ``axis`` is the centroider's energy axis (calibration)."""
    attrs = dict(attrs)
    if line_direction(hit_map) == "x":
        attrs["layout_warning"] = LAYOUT_HINT
    yc = grid.y_centres()
    calibrated = axis.slope is not None
    energy = axis.intercept + axis.slope * yc if calibrated else yc
    return Result(
        "hit_map",
        hit_map.copy(),
        ("scan", "slot", "energy", "x"),
        {"scan": coords["scan"], "slot": coords["slot"], "energy": energy, "x": grid.x_centres()},
        "hits",
        {"energy": "eV" if calibrated else "px", "x": "pixel"},
        attrs,
    )


class HitMap:
    """The hit map of one centroider: its grid, state field, result, and one layout warning."""

    def __init__(self, grid: HitMapGrid | None, axis: Any):
        self.grid = grid
        self.axis = axis
        self.warned = False

    @classmethod
    def of(cls, roi: Any, frame_shape: Any, axis: Any, min_size: int) -> HitMap:
        """The map over ``axis`` and the ROI's x pixels (no grid without a frame shape)."""
        if frame_shape is None:
            return cls(None, axis)
        _, _, x0, x1 = roi.resolve(tuple(frame_shape), min_size)
        return cls(HitMapGrid.covering(axis.lo, axis.hi, x0, x1), axis)

    def __bool__(self) -> bool:
        return self.grid is not None

    def spec(self, slots: int) -> dict[str, tuple[tuple[int, ...], type]]:
        """The state field ``hit_map`` (per scan bin)."""
        assert self.grid is not None
        return {"hit_map": ((slots, self.grid.ny, self.grid.nx), np.int32)}

    def result(
        self, name: str, counts: np.ndarray, coords: dict[str, np.ndarray], attrs: dict[str, object]
    ) -> Result:
        """The result; a warning (once per run) when the lines run along x."""
        assert self.grid is not None
        res = hit_map_result(self.grid, self.axis, counts, coords, attrs)
        if "layout_warning" in res.attrs and not self.warned:
            self.warned = True
            log.warning("%s: %s", name, LAYOUT_HINT)
        return res
