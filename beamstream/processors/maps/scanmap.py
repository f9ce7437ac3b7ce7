"""`ScanMap`: per-frame attributes placed on a 2-D scan grid (lixtools ``make_map_from_attr``).

Place it after the `AttributeExtractor` in ``[[processors]]`` (accumulators run in config order
within a train). Each accepted frame's attributes (``view.products["attrs"]``) go to the grid
cell of the frame's scan position:

* **positions** (``x_source``/``x_key``, ``y_source``/``y_key``): the nearest grid node
  (rounding), so snake order needs no handling; a motor value may be one number per train or one
  per frame;
* **point index** (no position sources; ``shape``, ``first_train_id``): train ``k`` after the
  first is point ``k`` of the scan, snake-ordered if ``snake``.

State: a `BinnedState` keyed by cell (`ScanGrid.key`; cell indices are global, defined by the
grid origin and step), fields ``sum/<attr>``, ``count/<attr>`` (finite values) and ``frames``
per cell; the row `UNPLACED` counts frames that could not be placed, by reason. Partial scans,
workers and files merge on the union of their cells: sums add, so overlapping cells average.
``finalize`` divides (means; NaN where a cell has no value) and optionally derives
``absorption = -ln(T / T_bkg)`` and transmission-corrected maps.

The placement of frames is in `beamstream.processors.maps.placement`, the per-cell sums and the
maps made of them in `beamstream.processors.maps.cellmaps`; this module holds the accumulator.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..base import Accumulator, Result, TrainView
from ..params import ParamError, positive_float, string_list
from ..state import BinnedState
from ._state import GrowingState
from .advice import PositionLog, grid_advice
from .cellmaps import add_to_cell, add_to_cells, cell_means, transmission_maps
from .grid import _SHIFT, LIMIT, UNPLACED, ScanGrid
from .placement import EVENTS, place_by_index, place_by_position, place_train

__all__ = ["ScanMap"]

log = logging.getLogger(__name__)


class ScanMap(Accumulator[BinnedState]):
    """Maps of per-frame attributes over a raster scan, mergeable over partial scans.

    Parameters
    ----------
    name
        Instance name (the pipeline passes it).
    attributes
        Attribute names to map (default: every attribute the extractors produce).
    x_source, x_key, y_source, y_key
        Fast (x) and slow (y) axis motor positions; give both sources for position mode.
    dx, dy, x0, y0
        Grid step and one grid node (position units; in point-index mode the defaults 1, 0
        make the coordinates point indices).
    shape
        ``[ny, nx]``: the declared grid (cells from the origin); required in point-index mode.
    x_range, y_range
        Declared position bounds ``[lo, hi]``; positions outside are counted, not placed.
    snake
        Point-index mode: odd rows run backwards.
    tolerance
        Positions farther than ``tolerance * step`` from every node are not placed (counted as
        ``off_node``: the origin is not on the scan's grid, or the motor was between points).
    first_train_id
        Point-index mode: the train of point 0.
    repeat
        Point-index mode: point ``k`` wraps modulo ``ny * nx`` (else beyond the end is outside).
    units
        Units of the positions (coordinate units).
    transmission
        Name of the transmission attribute: adds ``maps/absorption = -ln(T / t_background)``.
    t_background
        Transmission without sample (a number) or ``"max"`` (the largest cell mean of T).
    correct_for_transmission
        Attributes (or ``true`` for all but ``transmission``) divided by ``T / <T>`` (``<T>``:
        the mean over beam-on cells) in the finalized maps.
    beam_off
        Cells with ``T < beam_off * mean(T)`` are beam-off: NaN in corrected maps and absorption.
    sample
        Sample name stored with the results.
    """

    context_keys = ("name",)

    def main_result(self, results: dict[str, Result]) -> str | None:
        """The first attribute's map (not the bookkeeping ``n_frames`` / ``unplaced``)."""
        skip = ("maps/n_frames", "maps/unplaced")
        return next((n for n in results if n not in skip and n.startswith("maps/")), None)

    def __init__(
        self,
        *,
        name: str = "maps",
        attributes: Sequence[str] | None = None,
        x_source: str | None = None,
        x_key: str = "actualPosition",
        y_source: str | None = None,
        y_key: str = "actualPosition",
        dx: float = 1.0,
        dy: float = 1.0,
        x0: float = 0.0,
        y0: float = 0.0,
        shape: Sequence[int] | None = None,
        x_range: Sequence[float] | None = None,
        y_range: Sequence[float] | None = None,
        snake: bool = True,
        tolerance: float = 0.25,
        first_train_id: int | None = None,
        repeat: bool = False,
        units: str = "mm",
        transmission: str | None = None,
        t_background: float | str = "max",
        correct_for_transmission: bool | Sequence[str] = False,
        beam_off: float = 0.25,
        sample: str = "overall",
    ):
        if not isinstance(name, str) or not name:
            raise ParamError("name", "a non-empty string", name)
        self.name = name
        self.attributes = None if attributes is None else string_list("attributes", attributes)
        if (x_source is None) != (y_source is None):
            raise ParamError("y_source" if y_source is None else "x_source", "both sources", None)
        self.positions = x_source is not None
        for k, v in (
            ("x_source", x_source),
            ("y_source", y_source),
            ("x_key", x_key),
            ("y_key", y_key),
        ):
            if v is not None and (not isinstance(v, str) or not v):
                raise ParamError(k, "a non-empty string", v)
        self.x_source, self.x_key, self.y_source, self.y_key = x_source, x_key, y_source, y_key
        self.grid = ScanGrid.from_params(dx, dy, x0, y0, shape, x_range, y_range, snake, tolerance)
        if not self.positions:
            if self.grid.shape is None:
                raise ParamError("shape", "[ny, nx] (no x_source/y_source: point-index mode)", None)
            if isinstance(first_train_id, bool) or not isinstance(first_train_id, int):
                raise ParamError(
                    "first_train_id", "the train ID of the first point", first_train_id
                )
        self.first_train_id = first_train_id
        if not isinstance(repeat, bool):
            raise ParamError("repeat", "true or false", repeat)
        self.repeat = repeat
        self.units = str(units)
        self.transmission = transmission
        if transmission is not None and not isinstance(transmission, str):
            raise ParamError("transmission", "an attribute name", transmission)
        if t_background != "max":
            t_background = positive_float("t_background", t_background)
        self.t_background = t_background
        if isinstance(correct_for_transmission, bool):
            self.correct: tuple[str, ...] | bool = correct_for_transmission
        else:
            self.correct = string_list("correct_for_transmission", correct_for_transmission)
        if self.correct and transmission is None:
            raise ParamError("transmission", "the transmission attribute (for corrections)", None)
        self.beam_off = float(beam_off)
        if not 0 <= self.beam_off < 1:
            raise ParamError("beam_off", "a fraction in [0, 1)", beam_off)
        if not isinstance(sample, str) or not sample:
            raise ParamError("sample", "a non-empty string", sample)
        self.sample = sample
        self._units: dict[str, str] = {}
        self._record_keys = (f"{name}.x", f"{name}.y")
        self._fields: dict[str, tuple[str, str]] = {}
        self._xs: dict[int, float] = {}
        self._ys: dict[int, float] = {}
        self.seen = PositionLog()  # positions seen, for advice when the scan misses the grid
        self._advised = False

    def describe(self) -> str:
        how = (
            f"positions {self.x_source} {self.x_key} / {self.y_source} {self.y_key}"
            if self.positions
            else f"point index from train {self.first_train_id}"
        )
        return f"ScanMap {self.name!r}: {how}, grid {self.grid.describe()}"

    # -- state --------------------------------------------------------------------------------
    def empty(self) -> BinnedState:
        meta = {
            "processor": "ScanMap",
            "grid": json.dumps(self.grid.describe(), sort_keys=True),
            "placement": json.dumps(
                [self.x_source, self.x_key, self.y_source, self.y_key]
                if self.positions
                else [self.first_train_id, self.repeat]
            ),
        }
        fields = {"frames": ((), np.int64), "unplaced": ((len(EVENTS),), np.int64)}
        state = GrowingState(fields, (), meta)
        for a in self.attributes or ():
            state.ensure_field(f"sum/{a}", (), np.float64)
            state.ensure_field(f"count/{a}", (), np.int64)
        return state

    # -- placement ----------------------------------------------------------------------------
    def place(self, view: TrainView, n: int, frames: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(iy, ix, placed, reason)`` of ``frames``; reason = index into `EVENTS` or -1."""
        if self.positions:
            x = (self.x_source, self.x_key)
            y = (self.y_source, self.y_key)
            return place_by_position(view, n, frames, self.grid, x, y)  # type: ignore[arg-type]
        return place_by_index(
            view.train_id,
            len(frames),
            self.grid,
            self.first_train_id,  # type: ignore[arg-type]
            self.repeat,
        )

    # -- the hot path -------------------------------------------------------------------------
    def _place_one(self, view: TrainView, m: int) -> tuple[int, int, int] | None:
        """``(iy, ix, reason)`` shared by all ``m`` frames when the motors give one number per
        train (the usual case; reason -1: placed); None: per-frame positions (use `place`)."""
        if not self.positions:
            return None
        x = (self.x_source, self.x_key)
        y = (self.y_source, self.y_key)
        return place_train(view, self.grid, x, y)  # type: ignore[arg-type]

    def update(self, state: BinnedState, view: TrainView) -> None:
        """Add the accepted frames' attributes to their cells (in place)."""
        attrs = view.products.get("attrs")
        n = len(next(iter(attrs.values()))) if attrs else max(view.n_frames, 1)
        all_frames = view.frame_slot is None
        frames = np.arange(n) if all_frames else np.flatnonzero(view.frame_slot >= 0)
        records = view.records
        kx, ky = self._record_keys
        records[kx] = np.nan
        records[ky] = np.nan
        if self.positions:
            self._note_positions(view)
        if not attrs:
            row = state.index(UNPLACED)
            state["unplaced"][row, 3] += len(frames)
            return
        one = self._place_one(view, len(frames)) if len(frames) else None
        if one is not None:
            cy, cx, why = one
            if why >= 0:
                row = state.index(UNPLACED)
                state["unplaced"][row, why] += len(frames)
                return
            self._add_single(state, view, attrs, frames, all_frames, cy, cx)
            return
        iy, ix, placed, reason = self.place(view, n, frames)
        if (~placed).any():
            row = state.index(UNPLACED)
            state["unplaced"][row] += np.bincount(reason[~placed], minlength=len(EVENTS))
        if not placed.any():
            return
        frames, iy, ix = frames[placed], iy[placed], ix[placed]
        keys = ScanGrid.key(iy, ix)
        if (keys == keys[0]).all():  # the usual case: one scan point per train
            self._add_single(state, view, attrs, frames, False, int(iy[0]), int(ix[0]))
            return
        self._note_units(view, attrs)
        add_to_cells(state, keys, attrs, self.attributes or attrs, frames)
        records[kx] = self._node_x(int(ix[0]))
        records[ky] = self._node_y(int(iy[0]))

    def _add_single(
        self,
        state: BinnedState,
        view: TrainView,
        attrs: dict[str, Any],
        frames: np.ndarray,
        all_frames: bool,
        iy: int,
        ix: int,
    ) -> None:
        """Add ``frames`` (all in cell ``(iy, ix)``) to the state."""
        self._note_units(view, attrs)
        key = (float(iy) + LIMIT) * _SHIFT + (float(ix) + LIMIT)  # ScanGrid.key, in floats
        add_to_cell(state, key, attrs, self.attributes or attrs, frames, all_frames, self._fields)
        view.records[self._record_keys[0]] = self._node_x(ix)
        view.records[self._record_keys[1]] = self._node_y(iy)

    def _note_positions(self, view: TrainView) -> None:
        for axis, src, key in (("x", self.x_source, self.x_key), ("y", self.y_source, self.y_key)):
            self.seen.add(axis, view.train.get(src, key, None))

    def _note_units(self, view: TrainView, attrs: dict[str, Any]) -> None:
        """Remember the units of the mapped attributes (the first ones published)."""
        units = view.products.get("attr_units", {})
        for a in self.attributes or attrs:
            if a not in self._units and a in units and attrs.get(a) is not None:
                self._units[a] = units[a]

    def _node_x(self, ix: int) -> float:
        v = self._xs.get(ix)
        if v is None:
            v = self._xs[ix] = float(self.grid.x(ix))
        return v

    def _node_y(self, iy: int) -> float:
        v = self._ys.get(iy)
        if v is None:
            v = self._ys[iy] = float(self.grid.y(iy))
        return v

    # -- results ------------------------------------------------------------------------------
    def maps(self, state: BinnedState) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """``({attr: mean map (ny, nx)}, y, x)`` plus ``"n_frames"`` (frames per cell)."""
        return cell_means(state, self.grid)

    def _transmission(self, maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return transmission_maps(
            maps, self.transmission, self.t_background, self.beam_off, self.correct
        )

    def finalize(self, state: BinnedState) -> dict[str, Result]:
        """``maps/<attr>`` (cell means), ``maps/n_frames``, ``absorption``, ``unplaced``."""
        maps, y, x = self.maps(state)
        derived = self._transmission(maps) if self.transmission else {}
        coords = {"y": y, "x": x}
        cu = {"y": self.units, "x": self.units}
        base = {"processor": self.name, "sample": self.sample, "data_key": "maps"}
        motors = (
            {"x": f"{self.x_source}/{self.x_key}", "y": f"{self.y_source}/{self.y_key}"}
            if self.positions
            else {}
        )
        out: dict[str, Result] = {}
        for a, m in {**maps, **derived}.items():
            attrs = {**base, "sub_key": a}
            if a in derived and a != "absorption":
                attrs["transmission_corrected"] = True
            units = "frames" if a == "n_frames" else self._units.get(a, "")
            rname = f"maps/{a}"
            out[rname] = Result(rname, m, ("y", "x"), coords, units, cu, attrs, motors)
        unplaced = (
            state["unplaced"].sum(axis=0) if len(state.keys) else np.zeros(len(EVENTS), np.int64)
        )
        attrs = {**base, "sub_key": "unplaced"}
        placed = int(np.nansum(maps.get("n_frames", np.zeros(0))))
        advice = grid_advice(
            self.grid, self.seen, dict(zip(EVENTS, unplaced.tolist(), strict=True)), placed
        )
        if advice is not None:
            attrs["grid_warning"] = advice
            if not self._advised:
                self._advised = True
                log.warning("%s: %s", self.name, advice)
        out["maps/unplaced"] = Result(
            "maps/unplaced",
            unplaced,
            ("reason",),
            {"reason": np.array(EVENTS)},
            "frames",
            {},
            attrs,
        )
        return out
