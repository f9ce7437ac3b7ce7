"""Interoperability, beamstream serving: karabo_bridge's ``Client`` receives from beamstream's
``Sender``, from its simulator and from the ``beamstream simulate`` command."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from karabo_bridge import Client

from beamstream.streamer import Sender, Train
from tests.streamer._interop_helpers import SERVER_FOR, Feeder, _assert_data_equal

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# karabo_bridge.Client <- beamstream Sender
# ---------------------------------------------------------------------------------------------
def _bs_train(tid: int) -> Train:
    rng = np.random.default_rng(tid)
    return Train(
        tid,
        1_700_000_000.0 + tid / 10,
        {
            "SPB_DET_AGIPD1M-1/DET/0CH0:xtdf": {
                "image.data": rng.integers(0, 16000, (4, 1, 64, 128), dtype=np.uint16),
                "image.cellId": np.arange(4, dtype=np.uint16),
                "image.trainId": np.full(4, tid, np.uint64),
                "header.pulseCount": 4,
            },
            "SA1_XTD2_XGM/DOOCS/MAIN": {
                "pulseEnergy.photonFlux": float(rng.normal()),
                "beamPosition.ixPos": np.float32(0.25),
                "state": "ON",
                "data.intensityTD": rng.normal(size=1000).astype(np.float32),
            },
        },
        meta={"SA1_XTD2_XGM/DOOCS/MAIN": {"ignored_keys": ["x"]}},
        dims={"SPB_DET_AGIPD1M-1/DET/0CH0:xtdf": {"image.data": ("frame", "module", "ss", "fs")}},
    )


def _expected_meta(train: Train, source: str) -> dict:
    ts = train.timestamp
    sec, frac = repr(ts).split(".")
    meta = {
        "source": source,
        "timestamp": ts,
        "timestamp.sec": sec,
        "timestamp.frac": frac.ljust(18, "0"),
        "timestamp.tid": train.train_id,
    }
    meta.update(train.meta.get(source, {}))
    return meta


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["REQ", "SUB", "PULL"])
def test_karabo_bridge_client_receives_from_beamstream_sender(
    kind: str, tcp_endpoint: str, cleanup: Callable
) -> None:
    sender = Sender(tcp_endpoint, socket=SERVER_FOR[kind])
    cleanup(sender.close)

    def step(i: int) -> bool:
        while not feeder.stopping:
            if sender.send(_bs_train(1000 + i), timeout=0.2):
                if kind == "SUB":
                    time.sleep(0.02)  # PUB drops for slow subscribers; give the client time
                return True
        return False

    client = Client(tcp_endpoint, sock=kind, timeout=5)
    cleanup(lambda: client.__exit__(None, None, None))
    feeder = Feeder(step)
    cleanup(feeder.stop)
    feeder.start()
    received = [client.next() for _ in range(5)]
    feeder.stop()
    tids = [next(iter(m.values()))["timestamp.tid"] for _, m in received]
    if kind == "SUB":  # a late joiner starts anywhere; after that, every train arrives
        assert tids == list(range(tids[0], tids[0] + 5))
    else:
        assert tids == [1000, 1001, 1002, 1003, 1004]
    for data, meta in received:
        tid = meta["SA1_XTD2_XGM/DOOCS/MAIN"]["timestamp.tid"]
        want = _bs_train(tid)
        _assert_data_equal(data, want.data)
        for src in want.data:
            assert meta[src] == _expected_meta(want, src)


# ---------------------------------------------------------------------------------------------
# karabo_bridge.Client <- beamstream's simulator
# ---------------------------------------------------------------------------------------------
def _simulate_module() -> Any:
    if importlib.util.find_spec("beamstream.simulate.serve") is None:
        pytest.skip("beamstream.simulate.serve is not there yet")
    from beamstream.simulate import serve

    if not hasattr(serve, "simulate") or not hasattr(serve, "make_simulator"):
        pytest.skip("beamstream.simulate.serve has no simulate()/make_simulator()")
    return serve


def _check_sim_train(data: dict, meta: dict, reference: Any) -> int:
    """Compare a (data, meta) pair with the simulator's own train of the same id; the train id."""
    tid = next(iter(meta.values()))["timestamp.tid"]
    want = reference.train(tid)
    _assert_data_equal(data, want.data)
    for src in want.data:
        m = meta[src]
        assert m["source"] == src and m["timestamp.tid"] == tid
        assert isinstance(m["timestamp.sec"], str) and isinstance(m["timestamp.frac"], str)
        assert len(m["timestamp.frac"]) == 18
        assert int(m["timestamp.sec"]) + int(m["timestamp.frac"]) * 1e-18 == pytest.approx(
            m["timestamp"], abs=1e-6
        )
        assert abs(m["timestamp"] - time.time()) < 60  # sent with the wall-clock time
    return tid


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["REQ", "SUB", "PULL"])
def test_karabo_bridge_client_receives_from_simulator(kind: str, tcp_endpoint: str) -> None:
    serve = _simulate_module()
    reference = serve.make_simulator("dssc", seed=3, frames=4)
    stop = threading.Event()
    bound = threading.Event()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["summary"] = serve.simulate(
                "dssc",
                endpoint=tcp_endpoint,
                socket=SERVER_FOR[kind],
                rate=50.0,
                trains=None,
                frames=4,
                seed=3,
                stop_event=stop,
                ready=lambda ep: bound.set(),
            )
        except BaseException as e:
            result["error"] = e
            bound.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    client = None
    try:
        assert bound.wait(10), "simulator did not bind"
        assert "error" not in result, result.get("error")
        client = Client(tcp_endpoint, sock=kind, timeout=1)
        tids: list[int] = []
        deadline = time.monotonic() + 20
        while len(tids) < 5 and time.monotonic() < deadline:
            try:
                tids.append(_check_sim_train(*client.next(), reference))
            except TimeoutError:
                assert thread.is_alive(), f"simulator ended: {result}"
    finally:
        stop.set()
        thread.join(timeout=10)
        if client is not None:
            client.__exit__(None, None, None)
    assert not thread.is_alive()
    assert "error" not in result, result.get("error")
    first = reference.first_train_id
    if kind == "SUB":
        assert tids == list(range(tids[0], tids[0] + 5)) and tids[0] >= first
    else:
        assert tids == list(range(first, first + 5))
    assert result["summary"]["sent"] >= 5


@pytest.mark.timeout(60)
def test_karabo_bridge_client_receives_from_simulate_cli(
    free_port: Callable[[], int], processes: Any, subprocess_env: dict
) -> None:
    serve = _simulate_module()
    if importlib.util.find_spec("beamstream.simulate.cli") is None:
        pytest.skip("`beamstream simulate` is not wired into the CLI yet")
    helps = subprocess.run(
        [sys.executable, "-m", "beamstream", "simulate", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env=subprocess_env,
    )
    if helps.returncode != 0:
        pytest.skip(f"`beamstream simulate --help` failed: {helps.stderr[-300:]}")
    wanted = ["--detector", "--endpoint", "--socket", "--rate", "--trains", "--frames", "--seed"]
    if missing := [opt for opt in wanted if opt not in helps.stdout]:
        pytest.skip(f"`beamstream simulate` has no {missing}")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = processes.start(
        [
            sys.executable,
            "-m",
            "beamstream",
            "simulate",
            "--detector",
            "dssc",
            "--socket",
            "PUSH",
            "--rate",
            "0",
            "--trains",
            "5",
            "--frames",
            "4",
            "--seed",
            "3",
            "--endpoint",
            endpoint,
            "--quiet",
        ],
        cwd=REPO,
        env=subprocess_env,
    )
    reference = serve.make_simulator("dssc", seed=3, frames=4)
    with Client(endpoint, sock="PULL", timeout=20) as client:
        try:
            tids = [_check_sim_train(*client.next(), reference) for _ in range(5)]
        except TimeoutError:
            pytest.fail(f"no trains from `beamstream simulate`: {processes.stop(proc)}")
    assert tids == list(range(reference.first_train_id, reference.first_train_id + 5))
    assert proc.wait(timeout=20) == 0, processes.stop(proc)
