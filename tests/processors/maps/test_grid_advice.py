"""A scan that misses its grid: the warning names the grid, the positions seen, a better grid."""

from __future__ import annotations

import logging

import numpy as np

from beamstream.processors.maps.advice import PositionLog, grid_advice, suggest_axis
from beamstream.processors.maps.grid import ScanGrid
from beamstream.simulate.saxs import RasterScan
from tests.processors.maps.test_scanmap import positional, run, scan_views


def test_a_scan_off_its_grid_gets_a_suggested_origin_and_step(caplog):
    # the scan's nodes are at 0.025 + 0.05 k; the config's grid (origin 0, step 0.05) puts every
    # position half a step from a node: all frames "off_node", an empty map
    scan = RasterScan((4, 5), x0=0.025, y0=0.025)
    acc = positional(x0=0.0, y0=0.0, shape=[4, 5])
    with caplog.at_level(logging.WARNING, logger="beamstream.processors.maps.scanmap"):
        res = acc.finalize(run(acc, scan_views(scan)))
        acc.finalize(run(acc, scan_views(scan)))  # warned once per run, not per snapshot
    unplaced = res["maps/unplaced"]
    assert unplaced.data.sum() == 20
    text = unplaced.attrs["grid_warning"]
    assert text.startswith("20 of 20 frames were not placed on the grid x0=0, y0=0, dx=0.05")
    assert "off_node: 17" in text and "outside_grid: 3" in text  # 0.225 rounds off the grid
    assert "positions seen: x 0.02" in text and "(5 positions), y 0.02" in text
    assert text.endswith("suggested: x0 = 0.025, y0 = 0.025, dx = 0.05, dy = 0.05, shape = [4, 5]")
    warned = [r for r in caplog.records if "suggested" in r.getMessage()]
    assert len(warned) == 1

    # with the suggestion applied, every frame is placed and no warning is given
    good = positional(x0=0.025, y0=0.025, shape=[4, 5])
    res = good.finalize(run(good, scan_views(scan)))
    assert res["maps/unplaced"].data.sum() == 0
    assert "grid_warning" not in res["maps/unplaced"].attrs
    assert np.isfinite(res["maps/v"].data).all()


def test_suggestion_ignores_jitter_and_missing_points():
    values = {0.1, 0.2, 0.3, 0.5, 0.6, 0.6001}  # 0.4 missing, one jittered repeat
    assert suggest_axis(values, 1.0) == (0.1, 0.1)
    assert suggest_axis({2.0}, 0.5) == (2.0, 0.5)
    assert suggest_axis(set(), 0.5) == (None, 0.5)


def test_no_advice_when_most_frames_are_placed():
    log = PositionLog()
    log.add("x", np.arange(5.0))
    log.add("y", 1.0)
    grid = ScanGrid(1.0, 1.0)
    assert grid_advice(grid, log, {"off_node": 3}, placed=20) is None
    assert grid_advice(grid, log, {"off_node": 3}, placed=2) is None  # too few frames to judge
    assert "suggested" in grid_advice(grid, log, {"outside_grid": 30}, placed=2)
