"""The scan grid: global integer cells from an origin and a step, snake order, cell keys.

A grid is defined by a node ``(x0, y0)`` and the steps ``(dx, dy)``; cell ``(iy, ix)`` is the
node ``(x0 + ix dx, y0 + iy dy)``, with ``ix``, ``iy`` any integers. Because the indices are
global, partial scans of different extents (and different workers) agree on every cell, and maps
merge on the union of their cells. A position goes to the nearest node (rounding); snake order
therefore needs no special handling when positions are read. Without positions, the ``k``-th
point of a ``shape`` scan goes to row ``k // nx`` and column ``k % nx``, reversed on odd rows
when ``snake``.

Cells are stored as float keys of a `BinnedState`: ``key = (iy + 2**25) * 2**26 + (ix + 2**25)``
(exact in float64); ``UNPLACED = -1.0`` is the row that counts frames that could not be placed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..params import ParamError, finite_float, float_range, positive_float, positive_int

__all__ = ["ScanGrid", "UNPLACED", "LIMIT"]

#: cell indices must lie in [-LIMIT, LIMIT)
LIMIT = 2**25
_SHIFT = float(2**26)
#: state key of the row that counts unplaced frames
UNPLACED = -1.0


@dataclass(frozen=True)
class ScanGrid:
    """Origin, step and optional bounds of a scan grid.

    Parameters
    ----------
    dx, dy
        Steps of the fast (x) and slow (y) axes, in position units.
    x0, y0
        A grid node (e.g. the first point of the scan).
    shape
        ``(ny, nx)``: the declared grid is the cells ``0 <= iy < ny``, ``0 <= ix < nx`` (the
        finalized map then always has this shape); None: unbounded.
    x_range, y_range
        Declared position bounds (inclusive; positions outside are not placed).
    snake
        Odd rows run backwards (for point-index placement only).
    tolerance
        Largest distance of a position from its node, as a fraction of the step (a larger one
        means the origin is not on the scan's grid, or the motor was not at a point).
    """

    dx: float = 1.0
    dy: float = 1.0
    x0: float = 0.0
    y0: float = 0.0
    shape: tuple[int, int] | None = None
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    snake: bool = True
    tolerance: float = 0.25

    @classmethod
    def from_params(
        cls,
        dx: Any = 1.0,
        dy: Any = 1.0,
        x0: Any = 0.0,
        y0: Any = 0.0,
        shape: Sequence[int] | None = None,
        x_range: Sequence[float] | None = None,
        y_range: Sequence[float] | None = None,
        snake: Any = True,
        tolerance: Any = 0.25,
    ) -> ScanGrid:
        """A grid from config values, checked (`ParamError` names the key)."""
        shp = None
        if shape is not None:
            if not isinstance(shape, list | tuple) or len(shape) != 2:
                raise ParamError("shape", "[ny, nx]", shape)
            shp = (positive_int("shape", shape[0]), positive_int("shape", shape[1]))
        if not isinstance(snake, bool):
            raise ParamError("snake", "true or false", snake)
        tol = positive_float("tolerance", tolerance)
        if tol > 0.5:
            raise ParamError("tolerance", "a fraction of the step in (0, 0.5]", tolerance)
        return cls(
            positive_float("dx", dx),
            positive_float("dy", dy),
            finite_float("x0", x0),
            finite_float("y0", y0),
            shp,
            None if x_range is None else float_range("x_range", x_range),
            None if y_range is None else float_range("y_range", y_range),
            snake,
            tol,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "dx": self.dx,
            "dy": self.dy,
            "x0": self.x0,
            "y0": self.y0,
            "shape": None if self.shape is None else list(self.shape),
            "x_range": None if self.x_range is None else list(self.x_range),
            "y_range": None if self.y_range is None else list(self.y_range),
            "snake": self.snake,
            "tolerance": self.tolerance,
        }

    # -- placement ----------------------------------------------------------------------------
    def inside(self, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
        """Whether cells are within the declared shape and the index limits."""
        ok = (np.abs(ix) < LIMIT) & (np.abs(iy) < LIMIT)
        if self.shape is not None:
            ny, nx = self.shape
            ok &= (iy >= 0) & (iy < ny) & (ix >= 0) & (ix < nx)
        return ok

    def cells_of_positions(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(iy, ix, inside, near)``: nearest nodes of positions; ``inside`` False beyond the
        bounds; ``near`` False farther than ``tolerance`` steps from the node.

        Positions must be finite (the caller counts non-finite ones separately).
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        ux = (x - self.x0) / self.dx
        uy = (y - self.y0) / self.dy
        fx = np.clip(np.rint(ux), -LIMIT, LIMIT)
        fy = np.clip(np.rint(uy), -LIMIT, LIMIT)
        near = (np.abs(ux - fx) <= self.tolerance) & (np.abs(uy - fy) <= self.tolerance)
        ix, iy = fx.astype(np.int64), fy.astype(np.int64)
        ok = self.inside(iy, ix)
        if self.x_range is not None:
            ok &= (x >= self.x_range[0]) & (x <= self.x_range[1])
        if self.y_range is not None:
            ok &= (y >= self.y_range[0]) & (y <= self.y_range[1])
        return iy, ix, ok, near

    def cell_of_position(self, x: float, y: float) -> tuple[int, int, bool, bool]:
        """`cells_of_positions` of one finite position, in plain floats (same arithmetic)."""
        ux = (x - self.x0) / self.dx
        uy = (y - self.y0) / self.dy
        fx = min(max(float(round(ux)), -LIMIT), LIMIT)  # round half to even, like np.rint
        fy = min(max(float(round(uy)), -LIMIT), LIMIT)
        near = abs(ux - fx) <= self.tolerance and abs(uy - fy) <= self.tolerance
        ix, iy = int(fx), int(fy)
        ok = abs(ix) < LIMIT and abs(iy) < LIMIT
        if self.shape is not None:
            ny, nx = self.shape
            ok = ok and 0 <= iy < ny and 0 <= ix < nx
        if self.x_range is not None:
            ok = ok and self.x_range[0] <= x <= self.x_range[1]
        if self.y_range is not None:
            ok = ok and self.y_range[0] <= y <= self.y_range[1]
        return iy, ix, ok, near

    def cell_of_point(self, k: int) -> tuple[int, int]:
        """``(iy, ix)`` of the ``k``-th point of a ``shape`` scan (snake if configured)."""
        if self.shape is None:
            raise ValueError("point-index placement needs the scan shape")
        nx = self.shape[1]
        iy, ix = divmod(int(k), nx)
        if self.snake and iy % 2 == 1:
            ix = nx - 1 - ix
        return iy, ix

    # -- keys and coordinates -----------------------------------------------------------------
    @staticmethod
    def key(iy: np.ndarray | int, ix: np.ndarray | int) -> np.ndarray:
        """Float state keys of cells (exact)."""
        iy = np.asarray(iy, dtype=np.float64)
        ix = np.asarray(ix, dtype=np.float64)
        return (iy + LIMIT) * _SHIFT + (ix + LIMIT)

    @staticmethod
    def unkey(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(iy, ix)`` of state keys (the inverse of `key`)."""
        k = np.asarray(keys, dtype=np.float64).astype(np.int64)
        return k // int(_SHIFT) - LIMIT, k % int(_SHIFT) - LIMIT

    def _decimals(self, step: float) -> int:
        return max(9, int(math.ceil(-math.log10(step))) + 6)

    def x(self, ix: np.ndarray) -> np.ndarray:
        """Node x of columns (rounded well below the step, so equal nodes compare equal)."""
        return np.round(self.x0 + np.asarray(ix) * self.dx, self._decimals(self.dx))

    def y(self, iy: np.ndarray) -> np.ndarray:
        """Node y of rows."""
        return np.round(self.y0 + np.asarray(iy) * self.dy, self._decimals(self.dy))

    def extent(self, iy: np.ndarray, ix: np.ndarray) -> tuple[int, int, int, int]:
        """``(iy0, ny, ix0, nx)`` of the map: the declared shape, or the cells' bounding box."""
        if self.shape is not None:
            return 0, self.shape[0], 0, self.shape[1]
        if len(iy) == 0:
            return 0, 0, 0, 0
        return (
            int(iy.min()),
            int(iy.max() - iy.min() + 1),
            int(ix.min()),
            int(ix.max() - ix.min() + 1),
        )
