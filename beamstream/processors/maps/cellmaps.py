"""The per-cell sums of a scan-map state: adding frames' attributes to cells, and the maps.

The state (a `BinnedState` keyed by cell, `ScanGrid.key`) holds per cell ``frames`` and per
attribute ``sum/<attr>`` and ``count/<attr>`` (of the finite values). `add_to_cell` (the usual
case: all frames of a train in one cell) and `add_to_cells` add to it in place; `cell_means`
turns it into ``sum / count`` maps (NaN where a cell has no value) over the declared shape, or
the bounding box of the cells that were filled; `transmission_maps` derives the absorption and
transmission-corrected maps from them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..state import BinnedState
from .grid import ScanGrid

__all__ = ["add_to_cell", "add_to_cells", "cell_means", "transmission_maps"]


def _field_names(fields: dict[str, tuple[str, str]], a: str) -> tuple[str, str]:
    names = fields.get(a)
    if names is None:
        names = fields[a] = (f"sum/{a}", f"count/{a}")
    return names


def add_to_cell(
    state: BinnedState,
    key: float,
    attrs: Mapping[str, Any],
    names: Iterable[str],
    frames: np.ndarray,
    all_frames: bool,
    fields: dict[str, tuple[str, str]],
) -> None:
    """Add ``frames`` (all in the cell of state key ``key``) to the state, in place.

    Parameters
    ----------
    state
        The scan-map state (fields are added for new attributes).
    key
        The cell's state key.
    attrs
        ``{attribute: (n_frames,) values}`` of the train.
    names
        The attributes to add (those absent from ``attrs`` are skipped).
    frames
        Indices of the frames to add.
    all_frames
        ``frames`` is every frame of the train (then values need no selection).
    fields
        Cache of ``(sum field, count field)`` names per attribute (filled here).
    """
    r = state.index(key)
    arrays = state.arrays
    m = len(frames)
    arrays["frames"][r] += m
    for a in names:
        values = attrs.get(a)
        if values is None:
            continue
        sname, cname = _field_names(fields, a)
        s = arrays.get(sname)
        c = arrays.get(cname)
        if s is None or c is None:
            s = state.ensure_field(sname, (), np.float64)
            c = state.ensure_field(cname, (), np.int64)
            arrays = state.arrays
        v = np.asarray(values, dtype=np.float64)
        if not (all_frames and len(v) == m):
            v = v[frames]
        tot = v.sum()
        if math.isfinite(tot):  # then every value is finite
            s[r] += tot
            c[r] += m
        else:
            ok = np.isfinite(v)
            s[r] += v[ok].sum()
            c[r] += int(ok.sum())


def add_to_cells(
    state: BinnedState,
    keys: np.ndarray,
    attrs: Mapping[str, Any],
    names: Iterable[str],
    frames: np.ndarray,
) -> None:
    """Add ``frames`` to the cells of state keys ``keys`` (one per frame), in place."""
    ukeys, inverse = np.unique(keys, return_inverse=True)
    for k in ukeys:
        state.index(k)
    # looked up after all insertions (an inserted key shifts the rows after it)
    rows = np.searchsorted(state.keys, ukeys)
    nu = len(ukeys)
    state["frames"][rows] += np.bincount(inverse, minlength=nu)
    for a in names:
        values = attrs.get(a)
        if values is None:
            continue
        s = state.ensure_field(f"sum/{a}", (), np.float64)
        c = state.ensure_field(f"count/{a}", (), np.int64)
        v = np.asarray(values, dtype=np.float64)[frames]
        ok = np.isfinite(v)
        s[rows] += np.bincount(inverse[ok], weights=v[ok], minlength=nu)
        c[rows] += np.bincount(inverse[ok], minlength=nu)


def cell_means(
    state: BinnedState, grid: ScanGrid
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """``({attr: mean map (ny, nx)}, y, x)`` plus ``"n_frames"`` (frames per cell)."""
    cells = state.keys >= 0
    iy, ix = ScanGrid.unkey(state.keys[cells])
    iy0, ny, ix0, nx = grid.extent(iy, ix)
    out: dict[str, np.ndarray] = {}
    count = np.zeros((ny, nx), np.int64)
    count[iy - iy0, ix - ix0] = state["frames"][cells]
    out["n_frames"] = count
    names = [f[4:] for f in state.arrays if f.startswith("sum/")]
    for a in names:
        m = np.full((ny, nx), np.nan)
        s, c = state[f"sum/{a}"][cells], state[f"count/{a}"][cells]
        with np.errstate(invalid="ignore", divide="ignore"):
            m[iy - iy0, ix - ix0] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
        out[a] = m
    y = grid.y(iy0 + np.arange(ny))
    x = grid.x(ix0 + np.arange(nx))
    return out, y, x


def transmission_maps(
    maps: dict[str, np.ndarray],
    transmission: str | None,
    t_background: float | str,
    beam_off: float,
    correct: bool | Sequence[str],
) -> dict[str, np.ndarray]:
    """Maps derived from the transmission map ``maps[transmission]`` (T).

    Parameters
    ----------
    maps
        The cell means (`cell_means`).
    transmission
        Name of the transmission attribute.
    t_background
        Transmission without sample, or ``"max"`` (the largest beam-on cell mean of T).
    beam_off
        Cells with ``T < beam_off * mean(T)`` are beam-off (NaN in every derived map).
    correct
        Attributes (or True for all but T and ``n_frames``) divided by ``T / <T>`` (``<T>``:
        the mean over beam-on cells).

    Returns
    -------
    dict
        ``absorption = -ln(T / t_background)`` and the corrected maps; empty when there is
        no finite T.
    """
    t = maps.get(transmission)  # type: ignore[arg-type]
    if t is None or not np.isfinite(t).any():
        return {}
    on = t >= beam_off * np.nanmean(t)
    t_bkg = float(np.nanmax(t[on])) if t_background == "max" else t_background
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        out["absorption"] = np.where(on & (t > 0), -np.log(t / t_bkg), np.nan)
        t_rel = t / np.nanmean(t[on])
        todo = (
            [a for a in maps if a not in ("n_frames", transmission)]
            if correct is True
            else list(correct or ())
        )
        for a in todo:
            if a in maps:
                out[a] = np.where(on, maps[a] / t_rel, np.nan)
    return out
