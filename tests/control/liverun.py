"""Helpers for end-to-end control tests: a DSSC simulator thread and a `beamstream run` process."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from beamstream.control.client import ControlClient, ControlError
from beamstream.simulate import DsscSimulator, simulate
from tests.conftest import free_tcp_port, wait_for

from .configs import DSSC

FRAMES = 16


def make_sim() -> DsscSimulator:
    return DsscSimulator(
        seed=11, frames=FRAMES, delays=(0.0, 1.0), trains_per_step=3, xgm_jitter=0.4
    )


def expected_accepted(sim: DsscSimulator, train_id: int, threshold: float) -> int:
    """Frames a monitor rule ``min = threshold`` accepts (dark frames have no pulse)."""
    xgm = sim.train_truth(train_id)["xgm"]
    return FRAMES - int((xgm < threshold).sum())


@contextmanager
def simulator(endpoint: str, trains: int | None = None, rate: float = 40.0) -> Iterator[None]:
    stop = threading.Event()
    t = threading.Thread(
        target=simulate,
        kwargs=dict(
            detector=make_sim(),
            endpoint=endpoint,
            socket="REP",
            rate=rate,
            trains=trains,
            stop_event=stop,
        ),
        daemon=True,
    )
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(10)


def write_config(folder: Path, endpoint: str, threshold: float = 100.0) -> Path:
    cfg = folder / "dssc.toml"
    cfg.write_text(
        DSSC.replace("tcp://127.0.0.1:4545", endpoint).replace("min = 100.0", f"min = {threshold}")
    )
    return cfg


def start_run(processes, env, cfg: Path, out: Path, *extra: str):
    """`beamstream run` with its API on a free port; (process, client, log path)."""
    port = free_tcp_port()
    logf = (out.parent / f"run-{port}.log").open("wb")
    proc = processes.start(
        [
            sys.executable,
            "-m",
            "beamstream",
            "run",
            str(cfg),
            "--no-dashboard",
            "-q",
            "--control-port",
            str(port),
            "-o",
            str(out),
            *extra,
        ],
        env=env,
        stdout=logf,
        stderr=logf,
    )
    api = ControlClient(f"http://127.0.0.1:{port}", client="test", timeout=20)

    def up() -> bool:
        try:
            return api.status().get("processed", 0) >= 3
        except (OSError, ControlError):
            return proc.poll() is not None

    assert wait_for(up, timeout=60, interval=0.2), "the run's API did not come up"
    assert proc.poll() is None, Path(logf.name).read_text()
    return proc, api, Path(logf.name)


def same_results(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for proc in a:
        assert a[proc].keys() == b[proc].keys()
        for name, r in a[proc].items():
            np.testing.assert_array_equal(r.data, b[proc][name].data, err_msg=f"{proc}/{name}")
