"""config/eiger_map.toml live on the simulated Eiger; equal to the Karabo Bridge path."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from beamstream.config import SourceConfig, load_config, parse_config
from beamstream.dectris.geometry import resolve_config
from beamstream.dectris.series import SERIES_STRIDE
from beamstream.dectris.simulate import EigerSimulator, serve
from beamstream.formats.results import read_results_file
from beamstream.runner import Runner
from beamstream.streamer.sender import Sender
from beamstream.streamer.train import Train
from beamstream.tools.run_cmd import run_pipeline

from .helpers import parse_start

CONFIG = Path(__file__).resolve().parents[2] / "config" / "eiger_map.toml"
NY, NX = 4, 6


def _serve(sim, endpoint, n, stop):
    t = threading.Thread(
        target=serve, args=(sim, endpoint), kwargs=dict(images=n, stop_event=stop), daemon=True
    )
    t.start()
    return t


def _karabo_trains(sim: EigerSimulator, n: int):
    for k in range(n):
        pos = sim.positions(k)
        yield Train(
            SERIES_STRIDE + k,
            None,
            {
                "eiger": {"image.threshold_1": sim.frames(k)["threshold_1"][None]},
                "positions": {"x": np.array([pos["x"]]), "y": np.array([pos["y"]])},
            },
        )


def _send_karabo(trains, endpoint, stop):
    def run():
        with Sender(endpoint, socket="REP") as s:
            for t in trains:
                while not s.send(t, timeout=0.2):
                    if stop.is_set():
                        return
            s.flush_and_close(timeout=1.0)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


@pytest.mark.timeout(240)
def test_eiger_map_live_equals_karabo_bridge_path(tmp_path, endpoint, tcp_endpoint):
    n = NY * NX
    sim = EigerSimulator(seed=5, scan=(NY, NX), channels=2)
    config = load_config(CONFIG).with_source(endpoint=endpoint)
    stop = threading.Event()
    server = _serve(sim, endpoint, n, stop)
    out = tmp_path / "eiger.h5"
    try:
        status = run_pipeline(
            config, trains=n, duration=120, quiet=True, output=str(out), dashboard=False
        )
    finally:
        stop.set()
        server.join(10)
    assert status["processed"] == n, status

    # the same frames and positions through the Karabo Bridge, geometry given explicitly
    resolved, _ = resolve_config(config, parse_start(sim))
    bridge = replace(
        resolved,
        source=SourceConfig(
            endpoint=tcp_endpoint,
            socket="REQ",
            detector="eiger",
            key="image.threshold_1",
            layout=("frame", "y", "x"),
        ),
    )
    stop2 = threading.Event()
    sender = _send_karabo(_karabo_trains(sim, n), tcp_endpoint, stop2)
    runner = Runner(bridge, status_out=None)
    try:
        st2 = runner.run(trains=n, duration=120)
    finally:
        stop2.set()
        sender.join(10)
    assert st2["processed"] == n
    ref = runner.hub.latest().results

    live = read_results_file(out).results
    for proc, results in ref.items():
        for name, r in results.items():
            np.testing.assert_array_equal(live[proc][name].data, r.data, err_msg=name)
    assert set(live["maps"]) == set(ref["maps"]) and set(live["qphi"]) == set(ref["qphi"])
    with h5py.File(out) as f:
        prov = json.loads(f["entry/provenance"].attrs["status"])
    applied = prov["applied_geometry"]["qphi"]
    g = sim.geometry
    assert applied["geometry"]["poni1"] == pytest.approx(g.poni1)
    assert applied["geometry"]["dist"] == pytest.approx(g.dist)
    assert applied["origin"]["dist"] == "stream" and applied["mask_from_stream"]
    # the maps are placed on the scan grid; masked sentinels never reach the sums
    assert ref["maps"]["maps/n_frames"].data.tolist() == np.ones((NY, NX), int).tolist()
    assert np.isfinite(ref["maps"]["maps/int_saxs"].data).all()


@pytest.mark.timeout(120)
def test_new_series_is_a_new_epoch_of_the_run(endpoint):
    text = CONFIG.read_text().replace("threads = 2\n", "threads = 2\nseries_epoch = true\n")
    config = parse_config(text, str(CONFIG)).with_source(endpoint=endpoint)
    sim = EigerSimulator(seed=1, scan=(2, 2))
    stop = threading.Event()
    server = threading.Thread(
        target=serve,
        args=(sim, endpoint),
        kwargs=dict(images=4, series=2, stop_event=stop),
        daemon=True,
    )
    server.start()
    try:
        status = run_pipeline(config, trains=8, duration=90, quiet=True, dashboard=False)
    finally:
        stop.set()
        server.join(10)
    assert status["processed"] == 8 and status["epoch"] == 1
