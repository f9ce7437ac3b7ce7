"""Dashboard documents against a fake hub: data preparation, sources, controls, flow control."""

from __future__ import annotations

import time

import numpy as np
import pytest

from beamstream.processors.base import Result
from beamstream.sinks.dashboard import prep, roi
from beamstream.sinks.hub import Hub, Snapshot
from tests.sinks.dashboard_data import (
    SLOTS,
    binner_results,
    build,
    data,
    qphi_results,
    view,
)


# -- data preparation -------------------------------------------------------------------------
def test_panels_are_chosen_from_dims():
    kinds = {n: prep.classify(r) for n, r in {**binner_results(), **qphi_results()}.items()}
    assert kinds["mean"] == prep.Kind("image", ("y", "x"), ("slot",), True)
    assert kinds["pump_probe"] == prep.Kind("image", ("y", "x"), (), True)
    assert kinds["counts"] == prep.Kind("scalar", (), ("slot",), True)
    assert kinds["I_q"] == prep.Kind("curve", ("q",), ("slot",), True)
    assert kinds["I_qphi"] == prep.Kind("map", ("phi", "q"), ("slot",), True)
    assert kinds["count_q"] is None and kinds["sigma_q"] is None
    spec = Result("rixs.spectrum", np.zeros((1, 2, 5)), ("scan", "slot", "energy"))
    assert prep.classify(spec).kind == "curve"
    mod = Result("mean", np.zeros((1, 1, 2, 3, 4)), ("scan", "slot", "module", "y", "x"))
    assert prep.classify(mod).data_dims == ("module", "y", "x")
    # a scan map (y, x in motor units) is a map, not a detector image; named reasons are bars
    coords = {"y": np.arange(2.0), "x": np.arange(3.0)}
    smap = Result("maps/total", np.zeros((2, 3)), ("y", "x"), coords)
    assert prep.classify(smap) == prep.Kind("map", ("y", "x"), (), False)
    why = Result("maps/unplaced", np.zeros(2), ("reason",), {"reason": np.array(["a", "b"])})
    assert prep.classify(why) == prep.Kind("bars", ("reason",), (), False)


def test_decimate_block_means_and_nan():
    img = np.arange(36.0).reshape(6, 6)
    small, f = prep.decimate(img, 3)
    assert f == 2 and small.shape == (3, 3)
    assert small[0, 0] == pytest.approx((0 + 1 + 6 + 7) / 4)
    img[0, 0] = np.nan
    assert prep.decimate(img, 3)[0][0, 0] == pytest.approx((1 + 6 + 7) / 3)
    big, f = prep.decimate(np.ones((2048, 1024), np.uint16), 512)
    assert big.shape == (512, 256) and f == 4 and np.all(big == 1)


def test_scan_reduction_is_count_weighted():
    res = binner_results()
    values, _ = prep.reduce_scan(res["mean"], None, prep.sibling(res, res["mean"], "weight"))
    assert values[0, 0, 0] == pytest.approx((1 * 1 + 2 * 3) / 4)  # pumped, NaN bin has 0 counts
    one, _ = prep.reduce_scan(res["mean"], 0.0)
    assert one[0, 0, 0] == 2.0 and one[1, 0, 0] == 10.0


def test_pump_probe_curve_has_poisson_errors():
    res = binner_results()
    curve = roi.pump_probe_curve(res, res["pump_probe"], (0, 5, 0, 4))
    assert curve["x"].tolist() == [-1.0, 0.0, 2.0]
    assert curve["y"][:2].tolist() == [20 * (1 - 10), 20 * (2 - 10)]
    err = curve["upper"] - curve["y"]
    assert err[0] == pytest.approx(np.sqrt(20 * 1 / 1 + 20 * 10 / 1))
    assert err[1] == pytest.approx(np.sqrt(20 * 2 / 3 + 20 * 10 / 3))
    assert np.isnan(err[2])


def test_log_scale_and_fixed_levels():
    img, lo, hi = prep.color_levels(np.array([[0.0, 10.0], [100.0, 1000.0]]), "log", (10, 1000))
    assert np.isnan(img[0, 0]) and img[1, 1] == pytest.approx(3.0)
    assert (lo, hi) == (1.0, 3.0)


# -- the document -----------------------------------------------------------------------------
def test_document_fills_sources_from_the_hub(hub):
    app, doc = build(hub)
    status = data(doc, "status_source")
    assert status["processed"] == [7.0] and status["latest_train_id"] == [106.0]
    assert "rejected:x: 2" in doc.get_model_by_name("status").text
    assert "/data/results.h5" in doc.get_model_by_name("status").text
    records = data(doc, "records")
    assert list(records["train_id"]) == list(range(100, 107))
    assert list(records["monitor"]) == [2.0 * t for t in range(100, 107)]
    assert "vector" not in records
    latest = data(doc, "image:latest")["image"][0]
    frames = np.arange(4 * 8 * 10).reshape(4, 8, 10)
    np.testing.assert_allclose(latest, frames[[0, 2]].mean(axis=0))  # slot "pumped" frames
    mean = data(doc, "image:binner.mean")["image"][0]
    np.testing.assert_allclose(mean, (1 + 2 * 3) / 4)
    curve = data(doc, "curve:binner.pump_probe")
    assert list(curve["x"]) == [-1.0, 0.0, 2.0]
    assert curve["y"][0] == pytest.approx(80 * (1 - 10))
    iq = data(doc, "curve:qphi.I_q")
    assert list(iq["label"]) == ["pumped", "unpumped"]
    np.testing.assert_allclose(iq["ys"][1], np.arange(10.0) + 100)
    np.testing.assert_allclose(
        data(doc, "errors:qphi.I_q")["upper"] - np.arange(10.0), 0.5 / 3**0.5
    )
    qphi = data(doc, "image:qphi.I_qphi")
    assert qphi["image"][0].shape == (4, 10) and qphi["dw"][0] == pytest.approx(5.0)
    assert app.scan.options == ["all", "-1", "0", "2"] and app.slot.options == [
        "pumped",
        "unpumped",
    ]
    assert "binner.counts" in app.panels and app.panels["qphi.count_q"] is None


def test_update_follows_new_snapshots_records_and_trains(hub):
    app, doc = build(hub)
    before = data(doc, "image:binner.mean")["image"][0].copy()
    hub.publish(
        Snapshot(2, time.time(), {"binner": binner_results(scale=2.0)}, {}, {"processed": 9})
    )
    hub.add_record({"train_id": 107, "accepted_frames": 3, "frames": 4, "monitor": 1.0})
    hub.set_latest(view(107, np.ones((2, 8, 10), np.float32)))
    app.update()
    after = data(doc, "image:binner.mean")["image"][0]
    np.testing.assert_allclose(after, 2 * before)
    assert data(doc, "status_source")["processed"] == [9.0]
    assert list(data(doc, "records")["train_id"])[-1] == 107
    assert data(doc, "status_source")["latest_train_id"] == [107.0]
    assert data(doc, "image:latest")["image"][0].max() == 1.0


def test_controls_choose_scan_bin_slot_scale_and_pause(hub):
    app, doc = build(hub)
    app.scan.value = "0"
    app.slot.value = "unpumped"
    np.testing.assert_allclose(data(doc, "image:binner.mean")["image"][0], 10.0)
    assert "scan 0" in doc.get_model_by_name("figure:binner.mean").title.text
    app.scale.active = 1
    np.testing.assert_allclose(data(doc, "image:binner.mean")["image"][0], 1.0)  # log10(10)
    app.pause.active = True
    hub.publish(
        Snapshot(3, time.time(), {"binner": binner_results(scale=5.0)}, {}, {"processed": 11})
    )
    app.update()
    np.testing.assert_allclose(data(doc, "image:binner.mean")["image"][0], 1.0)  # frozen
    assert data(doc, "status_source")["processed"] == [11.0]  # the status stays live
    app.pause.active = False
    np.testing.assert_allclose(data(doc, "image:binner.mean")["image"][0], np.log10(50.0))


def test_roi_changes_the_delay_scan_curve(hub):
    app, doc = build(hub)
    assert (app.roi_x.end, app.roi_y.end) == (10, 8)
    app.roi_x.value, app.roi_y.value = (0, 5), (0, 4)
    app._changed("value_throttled", None, None)  # what the browser's slider release triggers
    assert data(doc, "curve:binner.pump_probe")["y"][0] == pytest.approx(20 * (1 - 10))


def test_reset_button_calls_back_and_new_results_get_panels(hub):
    calls = []
    app, doc = build(hub, on_reset=lambda: calls.append(1))
    assert not app.reset_button.disabled
    app._reset()
    assert calls == [1]
    spec = Result(
        "rixs.spectrum",
        np.ones((1, 2, 5)),
        ("scan", "slot", "energy"),
        {"scan": np.array([0.0]), "slot": SLOTS, "energy": np.arange(5.0)},
    )
    hub.publish(Snapshot(4, time.time(), {"rixs": {spec.name: spec}}, {}, {}, epoch=1))
    app.update()
    assert len(data(doc, "curve:rixs.rixs.spectrum")["ys"]) == 2
    assert data(doc, "status_source")["epoch"] == [1.0]
    assert build(Hub())[0].reset_button.disabled


def test_large_images_are_decimated_and_masked():
    hub = Hub()
    hub.set_latest(view(1, np.ones((2, 2, 1024, 600), np.float32)))
    mask = np.zeros((2, 1024, 600), bool)
    mask[1] = True
    app, doc = build(hub, mask=mask)
    img = data(doc, "image:latest")["image"][0]
    assert max(img.shape) <= 512 and img.shape == (512, 150)
    assert data(doc, "image:latest")["dh"] == [2048.0]
    overlay = data(doc, "mask:latest")["image"][0]
    assert overlay.shape == img.shape and overlay[:256].max() == 0 and overlay[256:].min() == 1


def test_updates_wait_for_the_browser_once_it_acknowledges(hub, monkeypatch):
    app, doc = build(hub)
    assert app.sent == 1 and data(doc, "status_source")["update"] == [1.0]
    app.update()  # no acknowledgement yet (no browser): never gated
    assert app.sent == 2
    doc.get_model_by_name("ack").data = {"update": [2]}  # what the page sends once it has drawn
    assert app.acked == 2
    app.update()
    hub.publish(
        Snapshot(5, time.time(), {"binner": binner_results(scale=3.0)}, {}, {"processed": 99})
    )
    app.update()  # update 3 is not acknowledged: this one is skipped
    assert (app.sent, app.skipped) == (3, 1)
    assert data(doc, "status_source")["processed"] == [7.0]
    doc.get_model_by_name("ack").data = {"update": [3]}
    app.update()
    assert app.sent == 4 and data(doc, "status_source")["processed"] == [99.0]
    app.update()  # 4 unacknowledged, but after ACK_TIMEOUT the next goes out anyway
    monkeypatch.setattr("beamstream.sinks.dashboard.app.ACK_TIMEOUT", 0.0)
    app.update()
    assert app.sent == 5


def test_one_broken_panel_does_not_blank_the_others(hub, monkeypatch):
    app, doc = build(hub)
    panel = app.panels["binner.mean"]
    monkeypatch.setattr(panel, "update", lambda *a: 1 / 0)
    hub.publish(
        Snapshot(2, time.time(), {"binner": binner_results(scale=2.0)}, {}, {"processed": 9})
    )
    app.update()
    assert data(doc, "curve:binner.pump_probe")["y"][0] == pytest.approx(80 * (2 - 20))


def test_updates_back_off_while_processing_is_saturated(hub):
    app, doc = build(hub)
    hub.busy = 0.1  # beamline rates: every periodic callback updates
    app.update()
    app.update()
    assert app.throttled == 0
    hub.busy = 1.0  # processing saturated: the display keeps to a small CPU budget
    app.update()
    sent = app.sent
    app.update()
    assert app.throttled == 1 and app.sent == sent
    app.budget.next_allowed = 0.0  # once its budget allows, it updates again
    app.update()
    assert app.sent == sent + 1
