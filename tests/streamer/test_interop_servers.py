"""Interoperability, beamstream receiving: its ``Receiver`` consumes karabo_bridge's simulator
and ``ServerInThread``, and extra-data's ``karabo-bridge-serve-files``."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from karabo_bridge import ServerInThread
from karabo_bridge.server import SimServerInThread

from beamstream.streamer import Receiver
from tests.streamer._interop_helpers import SERVER_FOR, Feeder, _assert_data_equal


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
    assert stats["dropped"].keys() <= {"overload", "lost:gap"}  # SUB: ZeroMQ drops, counted
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
    policy = "drop_oldest" if kind == "SUB" else "block"  # SUB cannot push back
    receiver = Receiver(tcp_endpoint, socket=kind, queue=16, policy=policy, timeout=10)
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
