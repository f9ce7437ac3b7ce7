"""Config versions on Dask live workers: every worker switches at the same train id."""

from __future__ import annotations

import threading
import time

import pytest

from beamstream.cluster.live import DaskLiveExecutor
from beamstream.config import parse_config
from beamstream.control.controller import Controller
from beamstream.control.patch import Change
from beamstream.runner import Runner
from beamstream.simulate import simulate
from tests.control.configs import DSSC
from tests.control.liverun import expected_accepted, make_sim


@pytest.mark.timeout(120)
def test_two_workers_switch_at_one_train_id(two_workers, tcp_endpoint):
    text = DSSC.replace("tcp://127.0.0.1:4545", tcp_endpoint).replace('"REQ"', '"PULL"')
    config = parse_config(text)
    control = Controller(config, wait=0)
    stop = threading.Event()
    sim = threading.Thread(
        target=simulate,
        kwargs=dict(
            detector=make_sim(), endpoint=tcp_endpoint, socket="PUSH", rate=30, stop_event=stop
        ),
        daemon=True,
    )
    sim.start()
    executor = DaskLiveExecutor(two_workers)
    driver = Runner(config, executor, status_out=None, control=control)

    def steer() -> None:
        while driver.counters.processed < 30 and not stop.is_set():
            time.sleep(0.05)
        control.apply(Change(set={"processors.frames.rules[0].min": 1500.0}, client="t"))
        while control.pending() and not stop.is_set():
            time.sleep(0.05)
        v = control.log.last
        while (v.last_train_id or 0) < v.first_train_id + 40 and not stop.is_set():
            time.sleep(0.05)
        driver.stop()

    steering = threading.Thread(target=steer, daemon=True)
    steering.start()
    try:
        status = driver.run(duration=60)
    finally:
        stop.set()
        steering.join(10)
        sim.join(10)
    v1, v2 = control.log.list()
    boundary = v2.first_train_id
    assert v2.kind == "new_segment" and boundary is not None
    assert status.get("late_version_switches", 0) == 0
    records, _, missed = driver.hub.records_since(0)
    assert missed == 0
    sim_truth = make_sim()
    before = [r for r in records if r["train_id"] < boundary]
    after = [r for r in records if r["train_id"] >= boundary]
    ids = [r["train_id"] for r in records]
    assert len(before) >= 20 and len(after) >= 30, (boundary, min(ids), max(ids), status)
    for r in records:
        threshold = 100.0 if r["train_id"] < boundary else 1500.0
        assert r["accepted_frames"] == expected_accepted(sim_truth, r["train_id"], threshold)
    # both workers took trains on both sides of the boundary
    per_worker = {n: s["delivered"] for n, s in driver.counters.sources.items()}
    assert len(per_worker) == 2 and all(n > 10 for n in per_worker.values())
    # the old version's states are a closed segment: never merged with the new ones
    (closed,) = driver.steering.closed
    assert closed.index == 0 and closed.versions == (1,)
    assert closed.processed == len(before)
    counts_before = closed.results["binned"]["counts"].data.sum()
    assert counts_before == sum(r["accepted_frames"] for r in before)
    counts_after = driver.hub.latest().results["binned"]["counts"].data.sum()
    assert counts_after == sum(r["accepted_frames"] for r in after)
