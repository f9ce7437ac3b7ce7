"""Interoperability with real peers: karabo_bridge's client, servers and simulator, and
extra-data's ``karabo-bridge-serve-files``; in both directions."""

from __future__ import annotations

import importlib.util
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from karabo_bridge import Client, ServerInThread
from karabo_bridge.server import SimServerInThread

from beamstream.streamer import Receiver, Sender, Train

REPO = Path(__file__).resolve().parents[2]
SERVER_FOR = {"REQ": "REP", "SUB": "PUB", "PULL": "PUSH"}


def _assert_value_equal(got: Any, want: Any, where: str) -> None:
    """Arrays: same dtype, shape, values; numpy scalars: the Python value; the rest: ==."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), where
        assert (got.dtype, got.shape) == (want.dtype, want.shape), where
        np.testing.assert_array_equal(got, want, err_msg=where)
    elif isinstance(want, np.generic):
        assert got == want.item(), where
        assert type(got) is type(want.item()), where
    else:
        assert got == want, where
        assert type(got) is type(want), where


def _assert_data_equal(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for src, values in want.items():
        assert sorted(got[src]) == sorted(values), src
        for key, value in values.items():
            _assert_value_equal(got[src][key], value, f"{src}[{key}]")


class Feeder:
    """Call ``step(i)`` for i = 0, 1, ... in a thread until it returns False or `stop` is called."""

    def __init__(self, step: Callable[[int], bool], limit: int = 100_000):
        self._step = step
        self._limit = limit
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feeder:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            for i in range(self._limit):
                if self._stop.is_set() or not self._step(i):
                    return
        except BaseException as e:  # reported by stop()
            self.error = e

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.thread.ident is not None:
            self.thread.join(timeout)
        assert not self.thread.is_alive(), "feeder thread did not stop"
        if self.error is not None:
            raise self.error


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
    if importlib.util.find_spec("beamstream.streamer.simulate.serve") is None:
        pytest.skip("beamstream.streamer.simulate.serve is not there yet")
    from beamstream.streamer.simulate import serve

    if not hasattr(serve, "simulate") or not hasattr(serve, "make_simulator"):
        pytest.skip("beamstream.streamer.simulate.serve has no simulate()/make_simulator()")
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
    if importlib.util.find_spec("beamstream.streamer.simulate.cli") is None:
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


# ---------------------------------------------------------------------------------------------
# beamstream Receiver <- karabo_bridge's simulator
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("protocol", "kind"),
    [("2.2", "REQ"), ("2.2", "SUB"), ("2.2", "PULL"), ("1.0", "REQ"), ("1.0", "PULL")],
)
def test_receiver_consumes_karabo_bridge_simulator(
    protocol: str, kind: str, tcp_endpoint: str, cleanup: Callable
) -> None:
    server = SimServerInThread(
        tcp_endpoint,
        sock=SERVER_FOR[kind],
        protocol_version=protocol,
        detector="AGIPDModule",
        raw=True,
        debug=False,
    )
    server.start()
    cleanup(server.stop)
    policy = "drop_oldest" if kind == "SUB" else "block"
    with Receiver(tcp_endpoint, socket=kind, queue=2, policy=policy, timeout=10) as receiver:
        trains = []
        for _ in range(4):
            t = receiver.get(timeout=10)
            assert t is not None, "no train from the simulator"
            trains.append(t)
        stats = receiver.stats()
    src = "SPB_DET_AGIPD1M-1/DET/0CH0:xtdf"
    tids = [t.train_id for t in trains]
    if kind == "SUB":
        assert tids == sorted(set(tids)) and tids[0] >= 10_000_000_000
    else:
        assert tids == [10_000_000_000 + i for i in range(4)]
    for t in trains:
        d = t.data[src]
        image = d["image.data"]
        assert image.dtype == np.uint16 and image.shape == (128, 512, 64)  # online order
        assert 1500 <= image.min() and image.max() <= 1600
        np.testing.assert_array_equal(d["image.cellId"], np.arange(64, dtype=np.uint16))
        np.testing.assert_array_equal(d["image.pulseId"], np.arange(64, dtype=np.uint64))
        np.testing.assert_array_equal(d["image.trainId"], np.full(64, t.train_id, np.uint64))
        assert d["image.gain"].shape == (128, 512, 64) and not d["image.gain"].any()
        m = t.meta[src]
        assert m["source"] == src and m["timestamp.tid"] == t.train_id
        assert int(m["timestamp.sec"]) + int(m["timestamp.frac"]) * 1e-18 == pytest.approx(
            m["timestamp"], abs=1e-5
        )
        assert t.timestamp == m["timestamp"] and abs(t.timestamp - time.time()) < 60
    assert stats["dropped"].keys() <= {"overload"}
    assert not any(k.startswith("malformed") for k in stats["dropped"])


# ---------------------------------------------------------------------------------------------
# beamstream Receiver <- karabo_bridge.ServerInThread with known data
# ---------------------------------------------------------------------------------------------
def _kb_data(tid: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(tid)
    data = {
        "FXE_DET_LPD1M-1/DET/0CH0:xtdf": {
            "image.data": rng.integers(0, 4096, (3, 1, 32, 32), dtype=np.uint16),
            "image.pulseId": np.arange(3, dtype=np.uint64),
            "image.mask": rng.integers(0, 2, (3, 32, 32)).astype(bool),
            "header.pulseCount": np.int64(3),
        },
        "FXE_XAD_GEC/CAM/CAMERA:daqOutput": {
            "data.image.pixels": rng.normal(size=(16, 24)).astype(np.float32),
            "data.image.dims": [16, 24],
            "data.image.encoding": "GRAY",
            "nested": {"a": [1, 2.5, None, True]},
        },
    }
    meta = {
        src: {
            "source": src,
            "timestamp": 1_700_000_000.5 + tid,
            "timestamp.sec": str(1_700_000_000 + tid),
            "timestamp.frac": "500000000000000000",
            "timestamp.tid": tid,
        }
        for src in data
    }
    return data, meta


@pytest.mark.timeout(30)
@pytest.mark.parametrize("protocol", ["2.2", "1.0"])
@pytest.mark.parametrize("kind", ["REQ", "SUB", "PULL"])
def test_receiver_consumes_karabo_bridge_server_in_thread(
    protocol: str, kind: str, tcp_endpoint: str, cleanup: Callable
) -> None:
    server = ServerInThread(
        tcp_endpoint, sock=SERVER_FOR[kind], maxlen=2, protocol_version=protocol
    )
    server.start()
    cleanup(server.stop)
    receiver = Receiver(tcp_endpoint, socket=kind, queue=16, policy="block", timeout=10)
    cleanup(receiver.close)

    def step(i: int) -> bool:
        tid = 5000 + i
        while not feeder.stopping:
            try:
                server.feed(*_kb_data(tid), timeout=0.2)
                if kind == "SUB":
                    time.sleep(0.02)
                return True
            except queue.Full:
                continue
        return False

    feeder = Feeder(step)
    cleanup(feeder.stop)
    feeder.start()
    trains = []
    for _ in range(5):
        t = receiver.get(timeout=10)
        assert t is not None
        trains.append(t)
    feeder.stop()
    tids = [t.train_id for t in trains]
    if kind == "SUB":
        assert tids == list(range(tids[0], tids[0] + 5))
    else:
        assert tids == [5000, 5001, 5002, 5003, 5004]
    for t in trains:
        data, meta = _kb_data(t.train_id)
        got = {src: dict(values) for src, values in t.data.items()}
        count = got["FXE_DET_LPD1M-1/DET/0CH0:xtdf"].pop("header.pulseCount")
        del data["FXE_DET_LPD1M-1/DET/0CH0:xtdf"]["header.pulseCount"]
        # 2.2 sends numpy scalars as Python values; msgpack-numpy (1.0) keeps them numpy scalars
        assert count == 3 and type(count) is (int if protocol == "2.2" else np.int64)
        _assert_data_equal(got, data)
        assert t.meta == meta
        assert t.timestamp == 1_700_000_000.5 + t.train_id
    assert receiver.stats()["dropped"] == {}


# ---------------------------------------------------------------------------------------------
# beamstream Receiver <- extra-data's karabo-bridge-serve-files
# ---------------------------------------------------------------------------------------------
XGM_SRC = "SA1_XTD2_XGM/DOOCS/MAIN"
CAM_SRC = "SPB_IRU_CAM/CAM/SIDEMIC"
N_TRAINS = 6
FIRST_TRAIN = 20_000


@pytest.fixture
def mock_run(tmp_path: Path) -> Path:
    """A small run (an XGM and a camera, 6 trains) written with extra-data's mock writers, then
    filled with known random values (the writers leave most datasets zero)."""
    from extra_data.tests.mockdata import write_file
    from extra_data.tests.mockdata.basler_camera import BaslerCamera
    from extra_data.tests.mockdata.xgm import XGM

    run = tmp_path / "r0001"
    run.mkdir()
    path = run / "RAW-R0001-DA01-S00000.h5"
    write_file(
        str(path),
        [XGM(XGM_SRC), BaslerCamera(CAM_SRC, sensor_size=(48, 64))],
        ntrains=N_TRAINS,
        firsttrain=FIRST_TRAIN,
        chunksize=N_TRAINS,
    )
    rng = np.random.default_rng(11)
    with h5py.File(path, "r+") as f:
        pixels = f[f"INSTRUMENT/{CAM_SRC}:daqOutput/data/image/pixels"]
        pixels[:N_TRAINS] = rng.integers(0, 4096, (N_TRAINS, 48, 64))
        td = f[f"INSTRUMENT/{XGM_SRC}:output/data/intensityTD"]
        td[:N_TRAINS] = rng.normal(size=(N_TRAINS, 1000))
        ix = f[f"CONTROL/{XGM_SRC}/beamPosition/ixPos/value"]
        ix[:N_TRAINS] = rng.normal(size=N_TRAINS)
        flux = f[f"CONTROL/{XGM_SRC}/pulseEnergy/photonFlux/value"]
        flux[:N_TRAINS] = rng.uniform(100, 1000, size=N_TRAINS)
    return run


def _file_train(run_dir: Path, tid: int) -> dict:
    """What extra-data reads for one train, less what serve-files drops (object arrays).

    The ``metadata`` map stays: karabo_bridge's serializer sends it inside the values too."""
    from extra_data import RunDirectory

    _, data = RunDirectory(str(run_dir)).train_from_id(tid)
    out = {}
    for src, values in data.items():
        out[src] = {
            k: v for k, v in values.items() if not (isinstance(v, np.ndarray) and v.dtype == object)
        }
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("kind", "extra"), [("REQ", []), ("PULL", ["--dummy-timestamps"])])
def test_receiver_consumes_serve_files(
    kind: str,
    extra: list[str],
    mock_run: Path,
    free_port: Callable[[], int],
    processes: Any,
    venv_bin: Path,
) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    exe = venv_bin / "karabo-bridge-serve-files"
    proc = processes.start([str(exe), str(mock_run), endpoint, "-z", SERVER_FOR[kind], *extra])
    with Receiver(endpoint, socket=kind, queue=N_TRAINS, timeout=30) as receiver:
        trains = []
        for _ in range(N_TRAINS):
            t = receiver.get(timeout=30)
            assert t is not None, f"after {len(trains)} trains: {processes.stop(proc)}"
            trains.append(t)
        stats = receiver.stats()
    out = processes.stop(proc) if proc.poll() is None else proc.stdout.read().decode()
    assert [t.train_id for t in trains] == list(range(FIRST_TRAIN, FIRST_TRAIN + N_TRAINS))
    assert stats["dropped"] == {}
    assert "Streamer started on" in out
    for t in trains:
        want = _file_train(mock_run, t.train_id)
        assert sorted(t.data) == sorted([XGM_SRC, f"{XGM_SRC}:output", f"{CAM_SRC}:daqOutput"])
        _assert_data_equal(t.data, want)
        for src in t.data:
            m = t.meta[src]
            assert m["source"] == src and m["timestamp.tid"] == t.train_id
            if extra:
                assert abs(m["timestamp"] - time.time()) < 120 and t.timestamp == m["timestamp"]
                assert len(m["timestamp.frac"]) == 18
            else:
                assert set(m) == {"source", "timestamp.tid"} and t.timestamp is None
    # the known values arrived, not just zeros
    pixels = np.stack([t.get(f"{CAM_SRC}:daqOutput", "data.image.pixels") for t in trains])
    assert pixels.dtype == np.uint16 and pixels.shape == (N_TRAINS, 48, 64) and pixels.std() > 100
    assert len({t.get(XGM_SRC, "beamPosition.ixPos") for t in trains}) == N_TRAINS
    assert trains[0].get(XGM_SRC, "beamPosition.ixPos") == trains[0].get(
        XGM_SRC, "beamPosition.ixPos.value"
    )
