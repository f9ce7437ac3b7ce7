"""Run a pipeline config against a simulator streaming over a real socket (end-to-end tests)."""

from __future__ import annotations

import threading
from pathlib import Path

from beamstream.config import load_config
from beamstream.runner import Runner
from beamstream.simulate import SimulatedDetector, simulate

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
