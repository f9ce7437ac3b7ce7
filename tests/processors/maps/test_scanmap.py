"""`ScanMap` on synthetic trains: de-snaking, partial-scan merges, merge laws, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from beamstream.formats.h5layout import read_result, write_result
from beamstream.processors.base import TrainView
from beamstream.processors.maps import ScanMap
from beamstream.processors.maps.placement import EVENTS
from beamstream.processors.params import ParamError
from beamstream.simulate.saxs import RasterScan
from beamstream.streamer.train import Train

XS, YS, KEY = "MOTOR/X", "MOTOR/Y", "actualPosition"
T0 = 1000


def make_view(tid, attrs, x=None, y=None, frame_slot=None):
    data = {}
    if x is not None:
        data[XS] = {KEY: x}
    if y is not None:
        data[YS] = {KEY: y}
    v = TrainView(Train(tid, None, data), frame_slot=frame_slot)
    v.products["attrs"] = {
        k: np.atleast_1d(np.asarray(a, dtype=np.float64)) for k, a in attrs.items()
    }
    return v


def positional(**kw):
    kw.setdefault("dx", 0.05)
    kw.setdefault("dy", 0.05)
    return ScanMap(x_source=XS, y_source=YS, **kw)


def truth(iy, ix):
    return 10.0 * iy + ix


def scan_views(scan: RasterScan, offset=0.0, jitter_seed=0, first=T0):
    """One train per point in the scan's snake order; value = truth of the nominal cell."""
    rng = np.random.default_rng(jitter_seed)
    xs, ys = scan.positions()
    out = []
    for k in range(scan.shape[0] * scan.shape[1]):
        iy, ix = scan.point(k)
        jx, jy = rng.normal(0, 2e-4, 2)
        gy, gx = round(ys[iy] / 0.05 - 0.5), round(xs[ix] / 0.05 - 0.5)  # global cell
        out.append(make_view(first + k, {"v": truth(gy, gx) + offset}, xs[ix] + jx, ys[iy] + jy))
    return out


def run(acc, views, state=None):
    state = acc.empty() if state is None else state
    for v in views:
        acc.update(state, v)
    return state


def test_snake_scan_desnaked_by_positions_and_by_index():
    scan = RasterScan((4, 5), x0=0.025, y0=0.025)
    acc = positional(x0=0.025, y0=0.025)
    res = acc.finalize(run(acc, scan_views(scan)))
    m = res["maps/v"]
    assert m.dims == ("y", "x") and m.data.shape == (4, 5)
    assert m.coords["x"].tolist() == scan.positions()[0].tolist()
    assert m.coords["y"].tolist() == scan.positions()[1].tolist()
    iy, ix = np.mgrid[0:4, 0:5]
    assert np.array_equal(m.data, truth(iy, ix))
    assert res["maps/n_frames"].data.tolist() == np.ones((4, 5), int).tolist()
    assert m.attrs["sample"] == "overall" and m.attrs["data_key"] == "maps"
    # the same from the point index (no motors), snake order
    views = [make_view(v.train_id, {"v": v.products["attrs"]["v"]}) for v in scan_views(scan)]
    idx = ScanMap(shape=[4, 5], first_train_id=T0, snake=True)
    assert np.array_equal(idx.finalize(run(idx, views))["maps/v"].data, truth(iy, ix))
    assert idx.finalize(run(idx, views))["maps/v"].coords["x"].tolist() == [0, 1, 2, 3, 4]
    # ... and without de-snaking, odd rows come out reversed
    raw = ScanMap(shape=[4, 5], first_train_id=T0, snake=False)
    got = raw.finalize(run(raw, views))["maps/v"].data
    assert np.array_equal(got[1], truth(1, ix[1])[::-1]) and np.array_equal(got[0], truth(0, ix[0]))


def test_partial_scans_merge_on_union_of_coordinates():
    a = RasterScan((3, 5), x0=0.025, y0=0.025)  # rows 0..2, columns 0..4
    b = RasterScan((3, 5), x0=0.125, y0=0.125)  # rows 2..4, columns 2..6
    acc = positional(x0=0.025, y0=0.025)
    sa = run(acc, scan_views(a, offset=+1.0))
    sb = run(acc, scan_views(b, offset=-1.0, jitter_seed=1, first=T0 + 100))
    merged = acc.merge(sa, sb)
    m = acc.finalize(merged)["maps/v"]
    assert m.data.shape == (5, 7)
    assert m.coords["x"].tolist() == [round(0.025 + 0.05 * i, 9) for i in range(7)]
    iy, ix = np.mgrid[0:5, 0:7]
    in_a = (iy <= 2) & (ix <= 4)
    in_b = (iy >= 2) & (ix >= 2)
    expect = np.full((5, 7), np.nan)
    expect[in_a] = truth(iy, ix)[in_a] + 1
    expect[in_b] = truth(iy, ix)[in_b] - 1
    expect[in_a & in_b] = truth(iy, ix)[in_a & in_b]  # the overlap averages (+1 and -1)
    assert np.array_equal(m.data, expect, equal_nan=True)
    n = acc.finalize(merged)["maps/n_frames"].data
    assert (
        n[in_a & in_b].tolist() == [2] * int((in_a & in_b).sum()) and n[~(in_a | in_b)].sum() == 0
    )
    # the in-place merge gives the same state
    sc = sa.copy()
    sc.merge_into(sb)
    assert sc.equals(merged)


def test_merge_laws():
    scan = RasterScan((4, 6), x0=0.025, y0=0.025)
    views = scan_views(scan) + scan_views(scan, offset=3.0, jitter_seed=2, first=T0 + 50)
    acc = positional(x0=0.025, y0=0.025)
    parts = [run(acc, views[i::3]) for i in range(3)]
    a, b, c = parts
    whole = run(acc, views)
    assert acc.merge(a, b).equals(acc.merge(b, a))
    assert acc.merge(acc.merge(a, b), c).equals(acc.merge(a, acc.merge(b, c)))
    # integer-valued sums: merging equals processing everything in one state, bit for bit
    merged = acc.merge(acc.merge(a, b), c)
    assert merged.equals(whole)
    assert acc.merge(acc.empty(), whole).equals(whole)
    np.testing.assert_array_equal(
        acc.finalize(merged)["maps/v"].data, acc.finalize(whole)["maps/v"].data
    )


def test_bad_positions_are_counted_and_left_nan():
    acc = positional(x0=0.0, y0=0.0, x_range=[-0.01, 0.2], y_range=[-0.01, 0.2])
    views = [
        make_view(1, {"v": 1.0}, 0.0, 0.0),
        make_view(2, {"v": 2.0}, 0.05, None),  # y motor missing
        make_view(3, {"v": 3.0}, float("nan"), 0.0),  # motor NaN
        make_view(4, {"v": 4.0}, 0.5, 0.0),  # outside the declared range
        make_view(5, {"v": 5.0}, np.zeros(3), 0.0),  # 3 positions for 1 frame
        make_view(6, {"v": 6.0}, 0.1, 0.0),
        make_view(9, {"v": 9.0}, 0.125, 0.0),  # half a step from the nodes
    ]
    views.append(TrainView(Train(7, None, {XS: {KEY: 0.0}, YS: {KEY: 0.0}})))  # no attributes
    res = acc.finalize(run(acc, views))
    unplaced = dict(zip(EVENTS, res["maps/unplaced"].data.tolist(), strict=True))
    assert unplaced == {
        "missing_position": 2,
        "bad_position": 1,
        "outside_grid": 1,
        "no_attributes": 1,
        "off_node": 1,
    }
    m = res["maps/v"]
    assert m.coords["x"].tolist() == [0.0, 0.05, 0.1]
    assert np.array_equal(m.data, [[1.0, np.nan, 6.0]], equal_nan=True)
    # records: the node of a placed train, NaN otherwise
    v = make_view(8, {"v": 1.0}, 0.1002, 0.0)
    acc.update(acc.empty(), v)
    assert (v.records["maps.x"], v.records["maps.y"]) == (0.1, 0.0)


def test_per_frame_positions_rejected_frames_and_outside_shape():
    acc = positional(x0=0.0, y0=0.0, shape=[1, 3])
    v = make_view(
        1,
        {"v": [1.0, 2.0, 3.0, 4.0, np.nan]},
        np.array([0.0, 0.05, 0.1, 0.15, 0.05]),
        0.0,
        frame_slot=np.array([0, -1, 0, 0, 0]),
    )
    res = acc.finalize(run(acc, [v]))
    # frame 1 rejected; frame 3 beyond the declared 3 columns; frame 4 placed, its value NaN
    assert np.array_equal(res["maps/v"].data, [[1.0, np.nan, 3.0]], equal_nan=True)
    assert res["maps/n_frames"].data.tolist() == [[1, 1, 1]]
    assert res["maps/unplaced"].data.tolist() == [0, 0, 1, 0, 0]
    # point-index mode: trains beyond the scan are outside unless it repeats
    idx = ScanMap(shape=[1, 2], first_train_id=10)
    s = run(idx, [make_view(t, {"v": t}) for t in (9, 10, 11, 12)])
    assert idx.finalize(s)["maps/v"].data.tolist() == [[10.0, 11.0]]
    assert idx.finalize(s)["maps/unplaced"].data.tolist() == [0, 0, 2, 0, 0]
    rep = ScanMap(shape=[1, 2], first_train_id=10, repeat=True)
    s = run(rep, [make_view(t, {"v": t}) for t in (10, 11, 12, 13)])
    assert rep.finalize(s)["maps/v"].data.tolist() == [[11.0, 12.0]]


def test_transmission_absorption_and_correction():
    t = np.array([[0.8, 0.5], [0.02, 0.4]])  # one beam-off cell
    i = np.array([[8.0, 5.0], [1.0, 2.0]])
    acc = positional(
        dx=1.0, dy=1.0, transmission="trans", t_background=0.9, correct_for_transmission=["int"]
    )
    views = [
        make_view(k, {"trans": t[iy, ix], "int": i[iy, ix]}, float(ix), float(iy))
        for k, (iy, ix) in enumerate(np.ndindex(2, 2))
    ]
    res = acc.finalize(run(acc, views))
    on = t >= 0.25 * t.mean()
    assert on.tolist() == [[True, True], [False, True]]
    expect_abs = np.where(on, -np.log(t / 0.9), np.nan)
    assert np.allclose(res["maps/absorption"].data, expect_abs, equal_nan=True)
    t_rel = t / t[on].mean()
    assert np.allclose(res["maps/int"].data, np.where(on, i / t_rel, np.nan), equal_nan=True)
    assert res["maps/int"].attrs["transmission_corrected"] is True
    assert np.array_equal(res["maps/trans"].data, t)  # the transmission map itself is as measured
    # t_background = "max": the largest beam-on transmission
    acc2 = positional(dx=1.0, dy=1.0, transmission="trans")
    res2 = acc2.finalize(run(acc2, views))
    assert np.allclose(
        res2["maps/absorption"].data, np.where(on, -np.log(t / 0.8), np.nan), equal_nan=True
    )


def test_results_round_trip_through_hdf5(tmp_path):
    acc = positional(x0=0.0, y0=0.0, sample="s1")
    res = acc.finalize(run(acc, [make_view(1, {"int_saxs": 2.5}, 0.0, 0.0)]))
    with h5py.File(tmp_path / "r.h5", "w") as f:
        write_result(f, res["maps/int_saxs"])
        back = read_result(f["maps/int_saxs"])  # nested: maps (NXcollection) / int_saxs
        assert f["maps"].attrs["NX_class"] == "NXcollection"
    assert back.name == "maps/int_saxs" and back.attrs["sample"] == "s1"
    assert back.data.tolist() == [[2.5]] and back.coords["x"].tolist() == [0.0]


def test_bad_parameters():
    with pytest.raises(ParamError, match="y_source"):
        ScanMap(x_source=XS)
    with pytest.raises(ParamError, match="shape"):
        ScanMap(first_train_id=1)
    with pytest.raises(ParamError, match="first_train_id"):
        ScanMap(shape=[2, 2])
    with pytest.raises(ParamError, match="transmission"):
        positional(correct_for_transmission=True)
    with pytest.raises(ParamError, match="t_background"):
        positional(transmission="t", t_background=-1)
