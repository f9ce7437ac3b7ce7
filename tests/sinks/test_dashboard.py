"""Dashboard documents against a fake hub, the server and sink lifecycle, and the HTML report."""

from __future__ import annotations

import logging
import time
import urllib.request

import h5py
import numpy as np
import pytest
from bokeh.document import Document

from beamstream.cli import main
from beamstream.config import parse_config
from beamstream.processors.base import Result, TrainView
from beamstream.runner import Runner
from beamstream.sinks.console import ConsoleSink
from beamstream.sinks.dashboard import DashboardSink, connect_reset, dashboard_sinks, prep, roi
from beamstream.sinks.dashboard.app import DashboardApp
from beamstream.sinks.dashboard.report import build_report, read_nxdata, write_report
from beamstream.sinks.hub import Hub, Snapshot
from beamstream.streamer.train import Train

KEYS = np.array([-1.0, 0.0, 2.0])
SLOTS = np.array(["pumped", "unpumped"])
Q = np.linspace(0.5, 5.0, 10)


def binner_results(scale: float = 1.0) -> dict[str, Result]:
    """ScanBinner-like results: mean (scan, slot, y, x), counts, pump_probe."""
    mean = np.zeros((3, 2, 8, 10))
    for i in range(3):
        mean[i, 0] = scale * (i + 1)  # pumped: 1, 2, 3 (x scale)
        mean[i, 1] = scale * 10.0  # unpumped: 10
    counts = np.array([[1, 1], [3, 3], [0, 0]])
    mean[2] = np.nan  # nothing counted in the last bin
    c = {"scan": KEYS, "slot": SLOTS}
    return {
        "mean": Result("mean", mean, ("scan", "slot", "y", "x"), c),
        "counts": Result("counts", counts, ("scan", "slot"), c),
        "pump_probe": Result(
            "pump_probe", mean[:, 0] - mean[:, 1], ("scan", "y", "x"), {"scan": KEYS}
        ),
    }


def qphi_results() -> dict[str, Result]:
    c = {"scan": KEYS, "slot": SLOTS, "q": Q}
    iq = np.broadcast_to(np.arange(10.0), (3, 2, 10)).copy()
    iq[:, 1] += 100
    return {
        "I_q": Result("I_q", iq, ("scan", "slot", "q"), c, coord_units={"q": "1/nm"}),
        "count_q": Result("count_q", np.ones((3, 2, 10)), ("scan", "slot", "q"), c),
        "sigma_q": Result("sigma_q", np.full((3, 2, 10), 0.5), ("scan", "slot", "q"), c),
        "I_qphi": Result(
            "I_qphi",
            np.ones((3, 2, 4, 10)),
            ("scan", "slot", "phi", "q"),
            {**c, "phi": np.array([45.0, 135, 225, 315])},
            coord_units={"q": "1/nm", "phi": "deg"},
        ),
    }


def view(tid: int, frames: np.ndarray, slots=("pumped", "unpumped")) -> TrainView:
    slot = np.arange(frames.shape[0]) % len(slots)
    return TrainView(Train(tid), frames=frames, frame_slot=slot, slots=tuple(slots))


@pytest.fixture
def hub() -> Hub:
    h = Hub()
    status = {
        "processed": 7,
        "last_train_id": 106,
        "trains_per_s": 10.0,
        "drops": {"rejected:x": 2},
        "latency_p50_s": 0.01,
        "latency_p99_s": 0.03,
        "run_time_s": 1.5,
    }
    h.publish(
        Snapshot(1, time.time(), {"binner": binner_results(), "qphi": qphi_results()}, {}, status)
    )
    for t in range(100, 107):
        h.add_record(
            {
                "train_id": t,
                "accepted_frames": t - 100,
                "scan_value": None,
                "frames": 4,
                "monitor": 2.0 * t,
                "vector": [1, 2],
            }
        )
    h.set_latest(view(106, np.arange(4 * 8 * 10, dtype=np.uint16).reshape(4, 8, 10)))
    h.info["output"] = "/data/results.h5"
    return h


def data(doc: Document, name: str) -> dict:
    model = doc.get_model_by_name(name)
    assert model is not None, f"no model named {name!r}"
    return model.data


def build(hub: Hub, **kw) -> tuple[DashboardApp, Document]:
    app = DashboardApp(hub, **kw)
    doc = Document()
    app.build(doc)
    return app, doc


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


# -- server, sink and command line ------------------------------------------------------------
CONFIG = """
version = 1
[source]
endpoint = "ipc:///unused"
socket = "PULL"
detector = "DET/0:xtdf"
key = "image.data"
layout = ["frame", "ss", "fs"]
[[processors]]
type = "tests.processors.userplugin:FrameTotals"
name = "totals"
[run]
interval = 0.05
status_interval = 100
"""


def test_sink_serves_during_a_run_and_stops(free_port):
    port = free_port()
    sink = DashboardSink(port=port, update_hz=5, out=None)
    runner = Runner(parse_config(CONFIG, "t.toml"), [sink], status_out=None)
    connect_reset([sink], runner.reset)
    seen = {}

    def trains():
        for t in range(20):
            if t == 5:
                url = runner.hub.info["dashboard_url"]
                with urllib.request.urlopen(url, timeout=10) as r:
                    seen["page"] = r.read().decode()
            yield Train(t, None, {"DET/0:xtdf": {"image.data": np.ones((2, 4, 5), np.uint16)}})

    status = runner.run(source=trains())
    assert status["processed"] == 20
    assert status["dashboard_url"] == f"http://127.0.0.1:{port}/"
    assert "bokeh" in seen["page"].lower()
    assert sink.on_reset == runner.reset
    assert not sink.server.running
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)


def test_taken_port_fails_or_falls_back():
    first = DashboardSink(port=0, out=None)
    first.serve(Hub())
    try:
        port = first.server.port
        with pytest.raises(OSError, match="cannot start the dashboard"):
            DashboardSink(port=port, out=None).serve(Hub())
        other = DashboardSink(port=port, out=None, port_fallback=True)
        url = other.serve(Hub())
        assert other.server.port != port and url.startswith("http://127.0.0.1:")
        other.stop()
    finally:
        first.stop()


def test_dashboard_sinks_on_off_and_port():
    console = ConsoleSink()
    on = dashboard_sinks([console], True, 0)
    assert (
        on[0] is console and isinstance(on[1], DashboardSink) and on[1].server.requested_port == 0
    )
    assert dashboard_sinks(on, False) == [console]
    assert dashboard_sinks(on, None, 1234)[1].server.requested_port == 1234
    default = dashboard_sinks([], True)[0]
    assert default.server.requested_port == 5006 and default.port_fallback


def test_run_command_has_dashboard_options(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--no-dashboard" in out and "--dashboard-port" in out


REPORT_CLI = "beamstream.sinks.dashboard.cli"


# -- report -----------------------------------------------------------------------------------
def write_nxdata(path, results: dict[str, dict[str, Result]]) -> None:
    """A NeXus-style file: /entry/<processor>/<result> NXdata groups (signal, axes, units)."""
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        for proc, named in results.items():
            pg = entry.create_group(proc)
            for name, r in named.items():
                g = pg.create_group(name)
                g.attrs.update(
                    NX_class="NXdata",
                    signal="data",
                    axes=[d if d in r.coords else "." for d in r.dims],
                )
                ds = g.create_dataset("data", data=r.data)
                if r.units:
                    ds.attrs["units"] = r.units
                for d, c in r.coords.items():
                    cd = g.create_dataset(d, data=c.astype("S") if c.dtype.kind == "U" else c)
                    if d in r.coord_units:
                        cd.attrs["units"] = r.coord_units[d]


def test_generic_nxdata_file_reads_back(tmp_path):
    path = tmp_path / "r.h5"
    write_nxdata(path, {"binner": binner_results(), "qphi": qphi_results()})
    back = read_nxdata(path)
    assert set(back) == {"binner", "qphi"}
    iq = back["qphi"]["I_q"]
    assert iq.dims == ("scan", "slot", "q") and iq.coord_units == {"q": "1/nm"}
    assert iq.coords["slot"].tolist() == ["pumped", "unpumped"]
    np.testing.assert_array_equal(iq.data, qphi_results()["I_q"].data)


def test_report_command_writes_standalone_html(tmp_path, capsys, monkeypatch):
    from beamstream import cli

    if REPORT_CLI not in cli.SUBCOMMANDS:  # until beamstream/cli.py lists it
        monkeypatch.setattr(cli, "SUBCOMMANDS", (*cli.SUBCOMMANDS, REPORT_CLI))
    path = tmp_path / "r.h5"
    write_nxdata(path, {"binner": binner_results(), "qphi": qphi_results()})
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    page = out.read_text()
    assert "cdn.bokeh.org" not in page and len(page) > 500_000  # BokehJS inlined: works offline
    for name in ("binner.mean", "binner.pump_probe", "qphi.I_q", "qphi.I_qphi"):
        assert name in page
    assert main(["report", str(tmp_path / "missing.h5")]) == 1


def test_report_layout_has_one_image_per_slot():
    layout = build_report({"binner": binner_results()}, {"train_id": np.arange(5), "x": np.ones(5)})
    doc = Document()
    doc.add_root(layout)
    names = [m.name for m in doc.models if getattr(m, "name", None)]
    assert names.count("image:binner.mean") == 2
    assert "records" in names


def test_report_of_a_real_results_file(tmp_path):
    hdf5 = pytest.importorskip("beamstream.sinks.hdf5")
    path = tmp_path / "run.h5"
    runner = Runner(parse_config(CONFIG, "t.toml"), [hdf5.HDF5Sink(str(path))], status_out=None)
    feed = [
        Train(t, None, {"DET/0:xtdf": {"image.data": np.full((2, 4, 5), t, np.uint16)}})
        for t in range(1, 6)
    ]
    runner.run(source=feed)
    html_path = write_report(path)
    page = html_path.read_text()
    assert html_path == tmp_path / "run.html"
    assert "totals.mean_total" in page and "accepted_frames" in page


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
    # scan_value is all None in the fixture: its plot shows a value that has data instead
    assert [s.value for s in app.records.selects] == ["accepted_frames", "frames", "monitor"]
    assert doc.get_model_by_name("records:2").yaxis[0].axis_label == "monitor"


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


def test_closing_a_page_does_not_spam_warnings():
    import beamstream.sinks.dashboard.server  # noqa: F401 - installs the filter

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    ws, keep = logging.getLogger("bokeh.server.views.ws"), Keep()
    ws.addHandler(keep)  # on the logger itself: Bokeh may stop its loggers propagating
    level, ws.level = ws.level, logging.WARNING
    try:
        ws.warning("Failed sending message as connection was closed")
        ws.warning("something else")
    finally:
        ws.removeHandler(keep)
        ws.setLevel(level)
    assert keep.messages == ["something else"]
