"""What the demo pages once showed wrong: dark-subtracted and pump-probe panels, maps, notes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from beamstream.processors.base import Result, TrainView
from beamstream.sinks.dashboard import prep, roi
from beamstream.sinks.hub import Hub, Snapshot
from beamstream.streamer.train import Train
from tests.sinks.dashboard_data import (
    binner_results,
    build,
    data,
)

# -- what the demo pages showed wrong -----------------------------------------------------------
PP_DARK = ("pumped", "pumped_dark", "unpumped", "unpumped_dark")
DARK_CONST = np.array([50, 7, 20, 3])


def dark_binner_results() -> dict[str, Result]:
    """Results of a real dark-subtracting ScanBinner: 3 scan bins (0, 0.5, 1), 4 frames of each
    slot per bin, frames of slot s in bin b hold ``100 * b + DARK_CONST[s]`` on 8 x 10 pixels."""
    from beamstream.processors.binner import ScanBinner

    binner = ScanBinner(slots=PP_DARK, dark_subtract=True)
    state = binner.empty()
    for t in range(6):
        b = t % 3
        slot = np.arange(8) % 4
        frames = np.broadcast_to((100 * b + DARK_CONST[slot]).reshape(8, 1, 1), (8, 8, 10))
        frames = np.ascontiguousarray(frames, dtype=np.int32)
        frames.flags.writeable = False
        v = TrainView(Train(t), frames=frames, frame_slot=slot, slots=PP_DARK)
        v.scan_key = 0.5 * b
        binner.update(state, v)
    return binner.finalize(state)


def test_dark_subtracted_and_pump_probe_images_and_delay_curve():
    res = dark_binner_results()
    assert res["mean_dark_subtracted"].dims == ("scan", "slot", "y", "x")
    assert list(res["mean_dark_subtracted"].coords["slot"]) == ["pumped", "unpumped"]
    assert res["pump_probe"].dims == ("scan", "y", "x")
    # the counts of all four slots weight the two non-dark slots (matched by slot name)
    w = prep.sibling(res, res["mean_dark_subtracted"], "weight")
    assert w.data.shape == (3, 2) and list(w.coords["slot"]) == ["pumped", "unpumped"]
    hub = Hub()
    hub.publish(Snapshot(1, time.time(), {"binned": res}, {}, {"processed": 6}))
    app, doc = build(hub)
    for name, value in (("mean_dark_subtracted", 43.0), ("pump_probe", 26.0)):
        img = data(doc, f"image:binned.{name}")
        assert img["image"][0].shape == (8, 10)
        assert (img["x"][0], img["y"][0], img["dw"][0], img["dh"][0]) == (0, 0, 10, 8)
        np.testing.assert_allclose(img["image"][0], value)
        assert doc.get_model_by_name(f"figure:binned.{name}").visible
    # a slot the result does not have (a dark slot) falls back to its first slot
    app.slot.value = "pumped_dark"
    np.testing.assert_allclose(data(doc, "image:binned.mean")["image"][0], 107.0)  # 3 bins
    np.testing.assert_allclose(data(doc, "image:binned.mean_dark_subtracted")["image"][0], 43.0)
    title = doc.get_model_by_name("figure:binned.mean_dark_subtracted").title.text
    assert title.endswith("slot=pumped")
    app.slot.value = "unpumped"
    np.testing.assert_allclose(data(doc, "image:binned.mean_dark_subtracted")["image"][0], 17.0)
    app.scan.value = "0.5"
    np.testing.assert_allclose(data(doc, "image:binned.mean")["image"][0], 120.0)
    # the delay-scan curve: one point per scan bin, ROI sum of the pump-probe image
    app.roi_x.value, app.roi_y.value = (0, 5), (0, 4)
    app._changed("value_throttled", None, None)
    curve = data(doc, "curve:binned.pump_probe")
    assert list(curve["x"]) == [0.0, 0.5, 1.0]
    np.testing.assert_allclose(curve["y"], 20 * 26.0)
    # counting errors of all four ROI sums (dark-subtracted difference), 4 frames per slot
    err = np.asarray(curve["upper"]) - np.asarray(curve["y"])
    expected = [np.sqrt(sum(20 * (100 * b + c) / 4 for c in DARK_CONST)) for b in range(3)]
    np.testing.assert_allclose(err, expected)


def test_pump_probe_curve_is_nan_where_a_bin_has_no_data():
    res = binner_results()
    curve = roi.pump_probe_curve(res, res["pump_probe"], None)
    assert len(curve["x"]) == 3 and np.isnan(curve["y"][2]) and np.isfinite(curve["y"][:2]).all()


def test_map_extents_follow_its_coordinates(hub):
    app, doc = build(hub)
    qphi = data(doc, "image:qphi.I_qphi")
    assert qphi["image"][0].shape == (4, 10)  # (phi, q): rows phi, columns q
    assert qphi["x"][0] == pytest.approx(0.25) and qphi["dw"][0] == pytest.approx(5.0)  # q
    assert qphi["y"][0] == pytest.approx(0.0) and qphi["dh"][0] == pytest.approx(360.0)  # phi
    fig = doc.get_model_by_name("figure:qphi.I_qphi")
    assert not fig.match_aspect  # q and phi have different units: no equal-aspect squashing
    assert fig.xaxis[0].axis_label == "q [1/nm]" and fig.yaxis[0].axis_label == "phi [deg]"
    assert doc.get_model_by_name("figure:binner.mean").match_aspect  # square detector pixels


def test_empty_and_single_bin_results_are_notes_and_tables():
    c = {"scan": np.array([0.0]), "slot": np.array(["image"])}
    energy = np.linspace(900, 940, 6)
    results = {
        "spectrum": Result(
            "spectrum", np.ones((1, 1, 6)), ("scan", "slot", "energy"), {**c, "energy": energy}
        ),
        "spectrum_per_monitor": Result(
            "spectrum_per_monitor",
            np.full((1, 1, 6), np.nan),
            ("scan", "slot", "energy"),
            {**c, "energy": energy},
        ),
        "n_single": Result("n_single", np.array([[177400]]), ("scan", "slot"), c),
    }
    hub = Hub()
    hub.publish(Snapshot(1, time.time(), {"rixs": results}, {}, {}))
    app, doc = build(hub)
    note = doc.get_model_by_name("note:rixs.spectrum_per_monitor")
    assert note.visible and "no data" in note.text
    assert not doc.get_model_by_name("figure:rixs.spectrum_per_monitor").visible
    assert doc.get_model_by_name("figure:rixs.spectrum").visible
    assert not doc.get_model_by_name("note:rixs.spectrum").visible
    table = doc.get_model_by_name("table:rixs.n_single")
    assert table.visible and "177" in table.text and "400" in table.text
    assert not doc.get_model_by_name("figure:rixs.n_single").visible
    # a second scan bin: a plot again, with a readable range around the (constant) values
    c2 = {"scan": np.array([0.0, 1.0]), "slot": np.array(["image"])}
    results2 = {
        "n_single": Result("n_single", np.array([[177400], [177400]]), ("scan", "slot"), c2)
    }
    hub.publish(Snapshot(2, time.time(), {"rixs": results2}, {}, {}))
    app.update()
    fig = doc.get_model_by_name("figure:rixs.n_single")
    assert fig.visible and not doc.get_model_by_name("table:rixs.n_single").visible
    assert fig.y_range.default_span == pytest.approx(35480.0)  # +-10 % around the value


def test_records_have_readable_train_ids_and_skip_empty_defaults(hub):
    from bokeh.models import NumeralTickFormatter

    app, doc = build(hub)
    fig = doc.get_model_by_name("records:0")
    assert isinstance(fig.xaxis[0].formatter, NumeralTickFormatter)
    assert fig.xaxis[0].formatter.format == "0"  # 10000000050, not 1.00000005e+10
    # 'frames' is constant and 'monitor' varies in the fixture: the plot of the constant shows
    # the varying value instead; scan_value (all None) stays only while nothing else has data
    assert [s.value for s in app.records.selects][:2] == ["accepted_frames", "monitor"]
    assert doc.get_model_by_name("records:1").yaxis[0].axis_label == "monitor"
    # train ids as offsets from the first train, whose id is in the axis label
    first = app.records.first_train
    assert fig.xaxis[0].axis_label == f"train id − {first}"
    assert app.records.source.data["train"][0] == 0
