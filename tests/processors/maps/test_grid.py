"""The scan grid: keys, rounding, bounds, snake order."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.maps.grid import LIMIT, ScanGrid
from beamstream.processors.params import ParamError


def test_keys_round_trip_with_negative_indices():
    iy = np.array([0, -1, 5, -LIMIT, LIMIT - 1])
    ix = np.array([0, 3, -7, LIMIT - 1, -LIMIT])
    keys = ScanGrid.key(iy, ix)
    assert (keys >= 0).all()
    back_y, back_x = ScanGrid.unkey(keys)
    assert back_y.tolist() == iy.tolist() and back_x.tolist() == ix.tolist()
    # keys sort row-major: by row, then column
    order = np.lexsort((ix, iy))
    assert np.array_equal(np.argsort(keys, kind="stable"), order)


def test_positions_round_to_nodes_and_bounds():
    g = ScanGrid.from_params(dx=0.05, dy=0.1, x0=0.025, y0=0.0, x_range=[-0.2, 0.2])
    x = np.array([-0.175 + 2e-4, 0.0249, 0.075 - 3e-4, 0.5])
    y = np.array([0.3 + 1e-3, -0.1, 0.0, 0.0])
    iy, ix, ok, near = g.cells_of_positions(x, y)
    assert ix.tolist()[:3] == [-4, 0, 1] and iy.tolist() == [3, -1, 0, 0]
    assert ok.tolist() == [True, True, True, False] and near[:3].all()
    # half a step off every node (the origin not on the scan's grid): not near
    _, _, _, near = g.cells_of_positions(np.array([0.05, 0.07]), np.array([0.0, 0.0]))
    assert near.tolist() == [False, True]
    assert g.x(ix[:3]).tolist() == [-0.175, 0.025, 0.075]
    assert g.y(np.array([3, -1])).tolist() == [0.3, -0.1]
    shaped = ScanGrid.from_params(dx=1, dy=1, shape=[2, 3])
    _, _, ok, _ = shaped.cells_of_positions(np.array([0, 2, 3, -1]), np.array([1, 1, 0, 0]))
    assert ok.tolist() == [True, True, False, False]


def test_snake_point_order():
    g = ScanGrid.from_params(shape=[3, 4], snake=True)
    cells = [g.cell_of_point(k) for k in range(12)]
    assert cells[:4] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert cells[4:8] == [(1, 3), (1, 2), (1, 1), (1, 0)]
    assert cells[8:] == [(2, 0), (2, 1), (2, 2), (2, 3)]
    raster = ScanGrid.from_params(shape=[3, 4], snake=False)
    assert raster.cell_of_point(5) == (1, 1)


def test_bad_grid_parameters():
    with pytest.raises(ParamError, match="dx"):
        ScanGrid.from_params(dx=0)
    with pytest.raises(ParamError, match="shape"):
        ScanGrid.from_params(shape=[3])
    with pytest.raises(ParamError, match="tolerance"):
        ScanGrid.from_params(tolerance=0.6)
    with pytest.raises(ParamError, match="x_range"):
        ScanGrid.from_params(x_range=[1, 0])
