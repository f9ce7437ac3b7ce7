"""One engine: a local run, a Dask live run and a chunked reprocess of the same trains agree."""

from __future__ import annotations

import threading

import pytest

from beamstream.cluster.live import DaskLiveExecutor
from beamstream.cluster.offline import reprocess
from beamstream.executors import LocalExecutor
from beamstream.replay import open_reader
from beamstream.runner import Runner
from beamstream.sinks.hub import Hub
from tests.cluster.helpers import config, push_trains, results_equal, write_raw
from tests.replay.synth import MOTOR, make_trains

N = 30
COUNTED = (
    "processed",
    "received",
    "frames",
    "rejected",
    "errors",
    "first_train_id",
    "last_train_id",
    "accepted_train_ids",
)


def trains() -> list:
    out = list(make_trains(N))
    del out[7].data[MOTOR]  # rejected: scan value missing
    return out


@pytest.mark.timeout(120)
def test_local_dask_live_and_chunked_runs_agree(two_workers, endpoint, tmp_path):
    raw = write_raw(tmp_path / "run.h5", trains())
    local = Runner(config(), LocalExecutor(open_reader(raw)), status_out=None)
    local_status = local.run()
    assert local_status["processed"] == N - 1
    assert local_status["rejected"] == {"scan value missing": 1}

    hub = Hub()
    chunk_status = reprocess(
        config(), str(raw), backend=two_workers, trains_per_chunk=7, hub=hub, status_out=None
    )

    stop = threading.Event()
    sender = push_trains(endpoint, trains(), stop)
    live = Runner(config(endpoint), DaskLiveExecutor(two_workers), status_out=None)
    try:
        live_status = live.run(trains=N, duration=60)
    finally:
        stop.set()
        sender.join(10)

    expected = local.hub.latest().results
    results_equal(hub.latest().results, expected)
    results_equal(live.hub.latest().results, expected)
    for key in COUNTED:
        assert chunk_status[key] == local_status[key], key
        assert live_status[key] == local_status[key], key
    assert chunk_status["chunks_done"] == chunk_status["chunks_total"] == 5
    assert live_status["workers"] == 2 and live_status["workers_lost"] == 0
