"""Run a pipeline config against a simulator streaming over a real socket (end-to-end tests)."""

from __future__ import annotations

import threading
from pathlib import Path

from beamstream.config import load_config
from beamstream.executors import LocalExecutor
from beamstream.runner import Runner
from beamstream.simulate import SimulatedDetector, simulate
from beamstream.simulate.megapixel import MegapixelSimulator
from beamstream.simulate.split import Delivery, plan_endpoints, simulate_split
from beamstream.sources.matched import with_inputs

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def run_on_simulator(
    sim: SimulatedDetector, config: str, endpoint: str, trains: int, timeout: float = 120
) -> Runner:
    """Stream ``trains`` trains of ``sim`` (REP, as fast as taken) into ``config/<config>``.

    Returns the finished `Runner` (its hub holds the final snapshot and the records); asserts
    that every train was processed. The simulator thread is always stopped.
    """
    stop = threading.Event()
    server = threading.Thread(
        target=simulate,
        kwargs=dict(
            detector=sim, endpoint=endpoint, socket="REP", rate=0, trains=trains, stop_event=stop
        ),
        daemon=True,
    )
    server.start()
    runner = Runner(
        load_config(CONFIG_DIR / config).with_source(endpoint=endpoint), status_out=None
    )
    try:
        status = runner.run(trains=trains, duration=timeout)
    finally:
        stop.set()
        server.join(10)
    assert status["processed"] == trains, status
    return runner


def run_on_split_simulator(
    sim: MegapixelSimulator,
    config: str,
    endpoint: str,
    trains: int,
    split: int,
    delivery: Delivery | None = None,
    timeout: float = 120,
    rate: float = 10.0,
    recorders: list | None = None,
) -> Runner:
    """Like `run_on_simulator` for a multi-module simulator served from ``split`` + 1 endpoints
    (``endpoint-0`` ...), the config's inputs pointed at them, paced at ``rate`` (the endpoints
    run independently: unpaced, the slow-data endpoint would run ahead of the deadline)."""
    sim.part(sim.first_train_id, sim.sources[:1])  # compile the kernels before the clock runs
    plan = plan_endpoints(endpoint, sim, split)
    inputs = [{"endpoint": ep, "name": f"input {i}"} for i, (ep, _) in enumerate(plan)]
    stop = threading.Event()
    server = threading.Thread(
        target=simulate_split,
        args=(sim, plan),
        kwargs=dict(rate=rate, trains=trains, delivery=delivery or Delivery(), stop_event=stop),
        daemon=True,
    )
    server.start()
    cfg = with_inputs(load_config(CONFIG_DIR / config), inputs)
    runner = Runner(cfg, LocalExecutor(recorders=recorders or []), status_out=None)
    try:
        runner.run(trains=trains, duration=timeout)
    finally:
        stop.set()
        server.join(10)
    return runner
