"""When a scan does not fit its grid: what the grid is, which positions came, and a better grid.

`PositionLog` keeps the distinct motor positions seen (bounded); `grid_advice` turns them and the
unplaced-frame counts into one warning naming the grid, the positions seen, and the ``x0``/``y0``
/``dx``/``dy`` that would place them: the smallest position of each axis as origin, the most
common spacing of the distinct positions as step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .grid import ScanGrid

__all__ = ["PositionLog", "grid_advice", "suggest_axis", "clusters"]

#: distinct values kept per axis (positions beyond are still counted in the min/max)
MAX_VALUES = 4096
#: the warning is given when more than this fraction of at least MIN_FRAMES frames is unplaced
UNPLACED_FRACTION = 0.5
MIN_FRAMES = 10


class PositionLog:
    """The distinct x and y positions seen (rounded to 1e-9), at most `MAX_VALUES` each."""

    def __init__(self) -> None:
        self.values: dict[str, set[float]] = {"x": set(), "y": set()}
        self.lo = {"x": np.inf, "y": np.inf}
        self.hi = {"x": -np.inf, "y": -np.inf}

    def add(self, axis: str, value: Any) -> None:
        """Note the position(s) ``value`` (a number or an array) of ``axis`` (``"x"``/``"y"``)."""
        try:
            v = np.asarray(value, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            return
        v = v[np.isfinite(v)]
        if not v.size:
            return
        self.lo[axis] = min(self.lo[axis], float(v.min()))
        self.hi[axis] = max(self.hi[axis], float(v.max()))
        seen = self.values[axis]
        if len(seen) < MAX_VALUES:
            seen.update(np.unique(np.round(v, 9)).tolist()[: MAX_VALUES - len(seen)])

    def describe(self, axis: str, units: str) -> str:
        if not self.values[axis]:
            return f"{axis}: none"
        n = len(clusters(self.values[axis]))
        u = f" {units}" if units else ""
        return f"{axis} {self.lo[axis]:.4g}..{self.hi[axis]:.4g}{u} ({n} positions)"


def clusters(values: set[float]) -> np.ndarray:
    """Centres of the groups of positions (motor jitter merged): sorted values split where a gap
    exceeds a quarter of the largest gap."""
    v = np.sort(np.fromiter(values, dtype=np.float64))
    if v.size < 2:
        return v
    gaps = np.diff(v)
    cut = np.flatnonzero(gaps > 0.25 * gaps.max()) + 1
    return np.array([g.mean() for g in np.split(v, cut)])


def suggest_axis(values: set[float], step: float) -> tuple[float | None, float]:
    """``(origin, step)`` for one axis: the first position and the most common spacing.

    Jitter of the motor is merged (`clusters`); a few missing points do not matter (the most
    common spacing, to 2 significant digits); the origin is rounded to a hundredth of the step.
    With one position the step is kept.
    """
    if not values:
        return None, step
    c = clusters(values)
    if c.size < 2:
        return float(c[0]), step
    rounded = np.array([float(f"{x:.2g}") for x in np.diff(c)])
    values_, counts = np.unique(rounded, return_counts=True)
    new_step = float(values_[np.argmax(counts)])
    res = new_step / 100
    return float(np.round(round(c[0] / res) * res, 12)), new_step


def grid_advice(
    grid: ScanGrid,
    log: PositionLog,
    unplaced: dict[str, int],
    placed: int,
    units: str = "",
) -> str | None:
    """A warning when most frames were not placed; None when the scan fits its grid."""
    missed = sum(unplaced.values())
    total = missed + placed
    if total < MIN_FRAMES or missed <= UNPLACED_FRACTION * total:
        return None
    shape = "unbounded" if grid.shape is None else f"{grid.shape[0]}x{grid.shape[1]} (ny x nx)"
    why = ", ".join(f"{k}: {v}" for k, v in unplaced.items() if v)
    text = (
        f"{missed} of {total} frames were not placed on the grid x0={grid.x0:g}, "
        f"y0={grid.y0:g}, dx={grid.dx:g}, dy={grid.dy:g}, shape {shape} ({why}); positions seen: "
        f"{log.describe('x', units)}, {log.describe('y', units)}"
    )
    x0, dx = suggest_axis(log.values["x"], grid.dx)
    y0, dy = suggest_axis(log.values["y"], grid.dy)
    if x0 is None or y0 is None:
        return text
    nx = int(round((log.hi["x"] - x0) / dx)) + 1
    ny = int(round((log.hi["y"] - y0) / dy)) + 1
    return (
        text
        + f"; suggested: x0 = {x0:g}, y0 = {y0:g}, dx = {dx:g}, dy = {dy:g}, shape = [{ny}, {nx}]"
    )
