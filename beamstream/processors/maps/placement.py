"""Placement of frames on the scan grid: which cell each frame goes to, or why it goes nowhere.

Two modes, as configured on `ScanMap`:

* **positions** (`place_by_position`, `place_train`): motor positions read from the train, one
  number per train or one per frame, go to the nearest grid node (`ScanGrid`); non-finite,
  unreadable, out-of-bounds and off-node positions are not placed;
* **point index** (`place_by_index`): train ``k`` after the first is point ``k`` of the scan
  (`ScanGrid.cell_of_point`, snake-ordered if configured), wrapping when ``repeat``.

A frame that is not placed gets a reason: its index into `EVENTS` (-1 when placed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from beamstream.streamer.train import MissingData

from ..base import TrainView
from .grid import ScanGrid

__all__ = ["EVENTS", "per_frame", "place_by_index", "place_by_position", "place_train"]

#: reasons a frame was not placed (the ``reason`` coordinate of ``maps/unplaced``)
EVENTS = ("missing_position", "bad_position", "outside_grid", "no_attributes", "off_node")


def per_frame(value: Any, n: int) -> np.ndarray:
    """``value`` as ``n`` float64 values per frame (a scalar is repeated); ``ValueError``
    for any other shape."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return np.full(n, float(a))
    if a.shape == (n,):
        return a
    raise ValueError(f"shape {a.shape}")


def place_by_position(
    view: TrainView,
    n: int,
    frames: np.ndarray,
    grid: ScanGrid,
    x: tuple[str, str],
    y: tuple[str, str],
) -> tuple[np.ndarray, ...]:
    """``(iy, ix, placed, reason)`` of ``frames`` (of ``n``) from the motor positions
    ``x = (source, key)``, ``y = (source, key)``; reason = index into `EVENTS` or -1."""
    m = len(frames)
    reason = np.full(m, -1, dtype=np.int64)
    try:
        xs = per_frame(view.train.get(*x), n)[frames]
        ys = per_frame(view.train.get(*y), n)[frames]
    except MissingData:
        reason[:] = 0
        return np.zeros(m, np.int64), np.zeros(m, np.int64), reason < 0, reason
    except (ValueError, TypeError):
        reason[:] = 1
        return np.zeros(m, np.int64), np.zeros(m, np.int64), reason < 0, reason
    finite = np.isfinite(xs) & np.isfinite(ys)
    reason[~finite] = 0
    iy, ix, inside, near = grid.cells_of_positions(
        np.where(finite, xs, grid.x0), np.where(finite, ys, grid.y0)
    )
    reason[finite & ~near] = 4
    reason[finite & ~inside] = 2
    return iy, ix, reason < 0, reason


def place_by_index(
    train_id: int, m: int, grid: ScanGrid, first_train_id: int, repeat: bool
) -> tuple[np.ndarray, ...]:
    """``(iy, ix, placed, reason)`` of the ``m`` frames of train ``train_id``: all at point
    ``train_id - first_train_id`` of the scan (modulo its size if ``repeat``)."""
    reason = np.full(m, -1, dtype=np.int64)
    ny, nx = grid.shape  # type: ignore[misc]
    k = int(train_id) - int(first_train_id)
    if repeat and k >= 0:
        k %= ny * nx
    if 0 <= k < ny * nx:
        cy, cx = grid.cell_of_point(k)
    else:
        cy, cx = 0, 0
        reason[:] = 2
    iy, ix = np.full(m, cy, np.int64), np.full(m, cx, np.int64)
    return iy, ix, reason < 0, reason


def place_train(
    view: TrainView, grid: ScanGrid, x: tuple[str, str], y: tuple[str, str]
) -> tuple[int, int, int] | None:
    """``(iy, ix, reason)`` shared by all frames when the motors give one number per train
    (the usual case; reason -1: placed); None: per-frame positions (use `place_by_position`)."""
    try:
        xv = view.train.get(*x)
        yv = view.train.get(*y)
    except MissingData:
        return 0, 0, 0
    if type(xv) is not float and not (isinstance(xv, np.ndarray) and xv.ndim == 0):
        return None
    if type(yv) is not float and not (isinstance(yv, np.ndarray) and yv.ndim == 0):
        return None
    try:
        xf, yf = float(xv), float(yv)
    except (ValueError, TypeError):
        return 0, 0, 1
    if not (math.isfinite(xf) and math.isfinite(yf)):
        return 0, 0, 0
    iy, ix, inside, near = grid.cell_of_position(xf, yf)
    reason = 2 if not inside else (4 if not near else -1)
    return iy, ix, reason
