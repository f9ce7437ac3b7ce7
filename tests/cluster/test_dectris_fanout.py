"""Two Dask workers fed from one DECTRIS stream through the relay equal a single process."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from beamstream.cluster.live import DaskLiveExecutor
from beamstream.config import ConfigError, parse_config
from beamstream.dectris.cluster import start_relay
from beamstream.dectris.simulate import EigerSimulator, serve
from beamstream.runner import Runner

TEXT = """
version = 1
[source]
type = "dectris"
socket = "PULL"
detector = "eiger"
key = "image.threshold_1"
layout = ["frame", "y", "x"]
positions = { from = "user_data", motors = ["x", "y"] }
[[processors]]
type = "scan_value"
source = "positions"
key = "x"
stepsize = 0.05
[[processors]]
type = "qphi"
npt_q = 40
npt_phi = 8
q_range = [0.3, 1.8]
polarization_factor = 0.99
geometry = "from-stream"
[run]
interval = 0.3
"""
N = 24


def _serve(sim, endpoint, stop):
    t = threading.Thread(target=serve, args=(sim, endpoint),
                         kwargs=dict(images=N, stop_event=stop), daemon=True)  # fmt: skip
    t.start()
    return t


def _close(a, b):
    assert a.keys() == b.keys()
    for proc in a:
        assert a[proc].keys() == b[proc].keys()
        for name, r in a[proc].items():
            np.testing.assert_allclose(r.data, b[proc][name].data, rtol=1e-12, equal_nan=True,
                                       err_msg=f"{proc}.{name}")  # fmt: skip


def test_fanout_needs_one_image_per_train():
    cfg = parse_config(TEXT.replace('socket = "PULL"', 'socket = "PULL"\nframes_per_train = 4'))
    with pytest.raises(ConfigError, match="frames_per_train: expected 1 with workers"):
        start_relay(cfg)


@pytest.mark.timeout(180)
def test_two_workers_from_one_stream_equal_single_process(two_workers, tcp_endpoint):
    sim = EigerSimulator(seed=9, shape=(128, 160), scan=(4, 6))
    cfg = parse_config(TEXT).with_source(endpoint=tcp_endpoint)

    stop = threading.Event()
    server = _serve(sim, tcp_endpoint, stop)
    worker_cfg, relay, applied = start_relay(cfg, peers=2)
    try:
        driver = Runner(worker_cfg, DaskLiveExecutor(two_workers), status_out=None)
        status = driver.run(trains=N, duration=90)
        relayed = relay.stats()
    finally:
        relay.close()
        stop.set()
        server.join(10)
    assert status["processed"] == N and status["workers"] == 2, status
    per_worker = [s["delivered"] for s in driver.counters.sources.values()]
    assert len(per_worker) == 2 and sum(per_worker) == N and min(per_worker) > 0
    assert relayed["forwarded"] == N and relayed["series"] == 1 and relayed["ends"] == 1
    assert relayed["dropped"] == {}
    assert applied["qphi"]["origin"]["poni1"] == "stream"

    stop = threading.Event()
    server = _serve(sim, tcp_endpoint, stop)
    try:
        single = Runner(worker_cfg.with_source(endpoint=tcp_endpoint), status_out=None)
        single.run(trains=N, duration=90)
    finally:
        stop.set()
        server.join(10)
    _close(driver.hub.latest().results, single.hub.latest().results)
