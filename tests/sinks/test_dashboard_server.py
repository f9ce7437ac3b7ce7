"""The dashboard server and sink lifecycle, its command-line options, and the HTML report."""

from __future__ import annotations

import logging
import urllib.request

import h5py
import numpy as np
import pytest
from bokeh.document import Document

from beamstream.cli import main
from beamstream.config import parse_config
from beamstream.executors import LocalExecutor
from beamstream.processors.base import Result
from beamstream.runner import Runner
from beamstream.sinks.console import ConsoleSink
from beamstream.sinks.dashboard import DashboardSink, connect_reset, dashboard_sinks
from beamstream.sinks.dashboard.report import build_report, read_nxdata, write_report
from beamstream.sinks.hub import Hub
from beamstream.streamer.train import Train
from tests.sinks.dashboard_data import (
    binner_results,
    qphi_results,
)

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
    executor = LocalExecutor()
    runner = Runner(parse_config(CONFIG, "t.toml"), executor, [sink], status_out=None)
    connect_reset([sink], runner.reset)
    seen = {}

    def trains():
        for t in range(20):
            if t == 5:
                url = runner.hub.info["dashboard_url"]
                with urllib.request.urlopen(url, timeout=10) as r:
                    seen["page"] = r.read().decode()
            yield Train(t, None, {"DET/0:xtdf": {"image.data": np.ones((2, 4, 5), np.uint16)}})

    executor.source = trains()
    status = runner.run()
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
    feed = [
        Train(t, None, {"DET/0:xtdf": {"image.data": np.full((2, 4, 5), t, np.uint16)}})
        for t in range(1, 6)
    ]
    sinks = [hdf5.HDF5Sink(str(path))]
    Runner(parse_config(CONFIG, "t.toml"), LocalExecutor(feed), sinks, status_out=None).run()
    html_path = write_report(path)
    page = html_path.read_text()
    assert html_path == tmp_path / "run.html"
    assert "totals.mean_total" in page and "accepted_frames" in page


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
