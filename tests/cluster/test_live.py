"""Live fan-out over Dask workers equals a single-process run over the same trains."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from beamstream.cluster.live import DaskLiveExecutor, check_fanout
from beamstream.config import ConfigError
from beamstream.runner import Runner
from beamstream.streamer.curve import CurveServer, generate_keys
from tests.cluster.helpers import config, push_trains, results_equal, single_process
from tests.replay.synth import FIRST, make_train


def test_fanout_needs_a_pull_socket():
    cfg = config().with_source(socket="REQ")
    with pytest.raises(ConfigError, match="source.socket: expected 'PULL'"):
        check_fanout(cfg)


@pytest.mark.timeout(60)
def test_live_run_equals_single_process(two_workers, endpoint):
    trains = [make_train(FIRST + i) for i in range(60)]
    stop = threading.Event()
    sender = push_trains(endpoint, trains, stop)
    driver = Runner(config(endpoint), DaskLiveExecutor(two_workers), status_out=None)
    try:
        status = driver.run(trains=len(trains), duration=40)
    finally:
        stop.set()
        sender.join(10)
    ids = np.concatenate(driver.executor.train_ids)
    assert sorted(ids.tolist()) == [t.train_id for t in trains]  # each train once, none lost
    assert status["processed"] == 60 and status["workers"] == 2 and status["workers_lost"] == 0
    per_worker = [s["delivered"] for s in status_sources(driver).values()]
    assert len(per_worker) == 2 and sum(per_worker) == 60
    expected, _ = single_process(config(endpoint), trains)
    results_equal(driver.hub.latest().results, expected)
    assert driver.hub.latest().final


@pytest.mark.timeout(60)
def test_live_run_over_curve(two_workers, endpoint, tmp_path):
    """Dask workers receive through the config's CURVE keys from an authenticating source."""
    keys = generate_keys(tmp_path / "keys")
    trains = [make_train(FIRST + i) for i in range(20)]
    stop = threading.Event()
    server = CurveServer.from_files(keys["server_secret"], keys["authorized"])
    sender = push_trains(endpoint, trains, stop, curve=server)
    cfg = config(endpoint).with_source(
        curve_server_key=str(keys["server"]), curve_client_key=str(keys["client_secret"])
    )
    driver = Runner(cfg, DaskLiveExecutor(two_workers), status_out=None)
    try:
        status = driver.run(trains=len(trains), duration=40)
    finally:
        stop.set()
        sender.join(10)
    assert status["processed"] == 20
    assert sorted(np.concatenate(driver.executor.train_ids).tolist()) == [
        t.train_id for t in trains
    ]


def status_sources(driver: Runner) -> dict:
    return driver.counters.sources


@pytest.mark.timeout(60)
def test_lost_worker_run_goes_on(two_workers, endpoint):
    trains = [make_train(FIRST + i) for i in range(400)]
    stop = threading.Event()
    sender = push_trains(endpoint, trains, stop)
    driver = Runner(config(endpoint), DaskLiveExecutor(two_workers), status_out=None)
    victim = two_workers.workers()[1]
    pid = two_workers.client.run(os.getpid, workers=[victim])[victim]

    def killer() -> None:
        while driver.counters.processed < 20 and not stop.is_set():
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    k = threading.Thread(target=killer, daemon=True)
    k.start()
    try:
        status = driver.run(duration=6)
    finally:
        stop.set()
        sender.join(10)
        k.join(5)
    assert status["workers_lost"] == 1 and status["lost_intervals"] >= 1
    assert status["drops"]["worker_lost"] == status["lost_intervals"]
    merged = np.concatenate(driver.executor.train_ids)
    assert len(np.unique(merged)) == len(merged) == status["received"]
    assert status["processed"] > 20  # the other worker went on
    # what was merged is exactly a single-process run over the merged trains
    by_id = {t.train_id: t for t in trains}
    expected, _ = single_process(config(endpoint), [by_id[i] for i in sorted(merged)])
    results_equal(driver.hub.latest().results, expected)
