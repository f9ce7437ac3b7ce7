"""The page at a glance: header state and train age, waiting state, colour-bar titles, controls
only where used, scan maps in motor units, unplaced reasons as bars with the grid warning."""

from __future__ import annotations

import time

import numpy as np

from beamstream.processors.base import Result
from beamstream.sinks.dashboard.header import connection_state
from beamstream.sinks.hub import Hub, Snapshot
from tests.sinks.dashboard_data import build


def test_connection_state_from_the_age_of_the_last_train():
    now = 1000.0
    assert connection_state({}, now=now).state == "waiting for data"
    st = {"received": 5, "last_train_at": now - 0.5}
    assert connection_state(st, now=now).level == "ok"
    st["last_train_at"] = now - 3
    assert (connection_state(st, now=now).state, connection_state(st, now=now).level) == (
        "slow",
        "amber",
    )
    st["last_train_at"] = now - 30
    c = connection_state(st, now=now)
    assert (c.state, c.level, c.age_s) == ("stalled", "red", 30)
    assert connection_state(st, final=True, now=now).state == "run ended"


def test_header_and_waiting_state():
    hub = Hub()
    hub.info.update(source="tcp://127.0.0.1:4545 (REQ)", config_name="x.toml")
    app, doc = build(hub)
    header = doc.get_model_by_name("header")
    assert "waiting for data" in header.text and "tcp://127.0.0.1:4545 (REQ)" in header.text
    assert "x.toml" in header.text and "version —" in header.text
    # no placeholder image before the first train, a note instead
    assert not doc.get_model_by_name("figure:latest").visible
    assert doc.get_model_by_name("waiting:latest").visible
    # controls that nothing uses yet are hidden
    for name in ("scan", "slot"):
        assert not doc.get_model_by_name(name).visible
    hub.set_status({"received": 3, "last_train_id": 10000000042, "last_train_at": time.time() - 12})
    app.update()
    src = doc.get_model_by_name("header_source").data
    assert src["state"] == ["stalled"] and src["level"] == ["red"]
    assert src["last_train_id"] == [10000000042] and src["age_s"][0] >= 12
    assert "last train <b>10000000042</b>" in header.text and "s ago" in header.text
    hub.info["diagnosis"] = "all trains rejected: detector data missing (3)"
    app.update()
    assert "nothing processed: all trains rejected: detector data missing (3)" in header.text


def test_scan_map_in_motor_units_and_unplaced_bars():
    hub = Hub()
    coords = {"y": np.array([0.025, 0.075]), "x": np.array([0.025, 0.075, 0.125])}
    units = {"y": "mm", "x": "mm"}
    total = Result("maps/total", np.arange(6.0).reshape(2, 3), ("y", "x"), coords, "counts", units)
    reasons = np.array(["missing_position", "outside_grid", "off_node"])
    why = Result(
        "maps/unplaced",
        np.array([0, 3, 17]),
        ("reason",),
        {"reason": reasons},
        "frames",
        {},
        {"grid_warning": "20 of 20 frames were not placed; suggested: x0 = 0.025"},
    )
    hub.publish(Snapshot(1, time.time(), {"maps": {total.name: total, why.name: why}}, {}, {}))
    app, doc = build(hub)
    fig = doc.get_model_by_name("figure:maps.maps/total")
    assert fig.xaxis[0].axis_label == "x [mm]" and fig.yaxis[0].axis_label == "y [mm]"
    img = doc.get_model_by_name("image:maps.maps/total").data
    assert img["x"][0] == 0.0 and img["dw"][0] == 0.15000000000000002  # cell edges in mm
    assert doc.get_model_by_name("colorbar:maps.maps/total").title == "counts"
    bars = doc.get_model_by_name("bars:maps.maps/unplaced").data
    assert bars["name"] == list(reasons) and bars["count"] == [0, 3, 17]
    warning = doc.get_model_by_name("warning:maps.maps/unplaced")
    assert warning.visible and "suggested: x0 = 0.025" in warning.text
    # the detector ROI belongs to pump-probe curves only: hidden on this page
    assert not app.roi_box.visible


def test_log_colour_scale_is_said_on_the_colour_bar():
    hub = Hub()
    app, doc = build(hub)
    total = Result("maps/total", np.ones((2, 2)), ("y", "x"), {"y": [0, 1], "x": [0, 1]}, "counts")
    hub.publish(Snapshot(1, time.time(), {"maps": {total.name: total}}, {}, {}))
    app.scale.active = 1
    app.update()
    assert doc.get_model_by_name("colorbar:maps.maps/total").title == "log10(counts)"


def test_a_scalar_result_without_scan_bins_is_a_note_not_an_error(caplog):
    hub = Hub()
    empty = Result("trains", np.zeros(0, np.int64), ("scan",), {"scan": np.zeros(0)})
    hub.publish(Snapshot(1, time.time(), {"mean": {"trains": empty}}, {}, {}))
    app, doc = build(hub)
    note = doc.get_model_by_name("note:mean.trains")
    assert note.visible and "no data yet" in note.text
    assert not doc.get_model_by_name("figure:mean.trains").visible
    assert "failed" not in caplog.text


def test_counts_by_two_named_categories_are_bars_of_pairs():
    hub = Hub()
    coords = {"attribute": np.array(["a", "b"]), "kind": np.array(["raised", "nan", "shape"])}
    problems = Result(
        "attrs/problems", np.arange(6).reshape(2, 3), ("attribute", "kind"), coords, "frames"
    )
    hub.publish(Snapshot(1, time.time(), {"attrs": {problems.name: problems}}, {}, {}))
    app, doc = build(hub)
    bars = doc.get_model_by_name("bars:attrs.attrs/problems").data
    assert bars["name"] == [
        "a / raised",
        "a / nan",
        "a / shape",
        "b / raised",
        "b / nan",
        "b / shape",
    ]
    assert bars["count"] == [0, 1, 2, 3, 4, 5]
    assert doc.get_model_by_name("figure:attrs.attrs/problems").title.text.endswith("15 frames")
