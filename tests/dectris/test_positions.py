"""Scan positions: image user_data, a positions table (CSV, NPY), bluesky documents over 0MQ."""

from __future__ import annotations

import threading

import msgpack
import numpy as np
import pytest
import zmq

from beamstream.dectris.bluesky import BlueskyPositions
from beamstream.dectris.positions import TablePositions, UserDataPositions
from beamstream.dectris.source import DectrisSource
from tests.conftest import free_tcp_port, wait_for

from . import spec_encoder as enc


@pytest.fixture
def push(endpoint):
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.bind(endpoint)
    yield sock
    sock.close()


def _image(k: int, user_data=None) -> bytes:
    a = np.full((16, 24), k, np.uint32)
    return enc.image(7, "u-7", k, data={"threshold_1": enc.mda(a, "bslz4")}, user_data=user_data)


def _collect(src, n):
    trains = [src.get(timeout=10) for _ in range(n)]
    assert all(t is not None for t in trains)
    return trains


def test_user_data_positions(push, endpoint):
    lookup = UserDataPositions(["x", "stage.y"])
    with DectrisSource(endpoint, positions=lookup, frames_per_train=2) as src:
        push.send(enc.start())
        push.send(_image(0, {"x": 1.5, "stage": {"y": -2.0}}))
        push.send(_image(1, {"x": 1.75, "stage": {"y": -2.0}}))
        push.send(_image(2, None))  # no user_data
        push.send(_image(3, {"x": 2.0}))  # a motor missing
        push.send(enc.end())
        t0, t1 = _collect(src, 2)
        st = src.stats()
    np.testing.assert_array_equal(t0.data["positions"]["x"], [1.5, 1.75])
    np.testing.assert_array_equal(t0.data["positions"]["stage.y"], [-2.0, -2.0])
    assert np.isnan(t1.data["positions"]["x"]).all()
    assert st["dropped"] == {"positions:no_user_data": 1, "positions:user_data_missing_key": 1}


@pytest.mark.parametrize("fmt", ["csv", "npy"])
def test_table_positions(push, endpoint, tmp_path, fmt):
    ids = np.array([0, 1, 3])
    xs, ys = np.array([0.1, 0.2, 0.4]), np.array([5.0, 5.0, 6.0])
    if fmt == "csv":
        path = tmp_path / "pos.csv"
        rows = "\n".join(f"{i},{x},{y}" for i, x, y in zip(ids, xs, ys, strict=True))
        path.write_text("image_id,x,y\n" + rows + "\n")
    else:
        path = tmp_path / "pos.npy"
        table = np.zeros(3, dtype=[("image_id", "i8"), ("x", "f8"), ("y", "f8")])
        table["image_id"], table["x"], table["y"] = ids, xs, ys
        np.save(path, table)
    with DectrisSource(endpoint, positions=TablePositions(path)) as src:
        push.send(enc.start())
        for k in range(4):
            push.send(_image(k))
        trains = _collect(src, 4)
        st = src.stats()
    got = [float(t.data["positions"]["x"][0]) for t in trains]
    assert got[:2] == [0.1, 0.2] and np.isnan(got[2]) and got[3] == 0.4
    assert st["dropped"] == {"positions:not_in_table": 1}


def test_bad_table_is_located(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="image_id column"):
        TablePositions(p)
    p.write_text("image_id,x\n1,2\n1,3\n")
    with pytest.raises(ValueError, match="duplicate image ids"):
        TablePositions(p)


@pytest.fixture
def proxy():
    """A bluesky 0MQ proxy (XSUB in, XPUB out) stopped by the test."""
    ctx = zmq.Context.instance()
    pin, pout = free_tcp_port(), free_tcp_port()
    front, back = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
    front.bind(f"tcp://127.0.0.1:{pin}")
    back.bind(f"tcp://127.0.0.1:{pout}")
    ctl_addr = f"inproc://proxy-control-{pin}"
    ctl = ctx.socket(zmq.PAIR)
    ctl.bind(ctl_addr)
    peer = ctx.socket(zmq.PAIR)
    peer.connect(ctl_addr)
    t = threading.Thread(target=zmq.proxy_steerable, args=(front, back, None, peer), daemon=True)
    t.start()
    yield f"tcp://127.0.0.1:{pin}", f"tcp://127.0.0.1:{pout}"
    ctl.send(b"TERMINATE")
    t.join(5)
    for s in (front, back, ctl, peer):
        s.close(linger=0)


@pytest.mark.timeout(120)
def test_bluesky_run_engine_positions_joined_by_seq_num(push, endpoint, proxy):
    from bluesky import RunEngine
    from bluesky.callbacks.zmq import Publisher
    from bluesky.plans import count, list_scan
    from ophyd.sim import det, motor1, motor2

    pin, pout = proxy
    positions = BlueskyPositions(pout, ["motor1", "motor2"], wait=0.5)
    re = RunEngine({}, context_managers=[])
    pub = Publisher(pin.removeprefix("tcp://"), serializer=msgpack.packb)
    re.subscribe(pub)
    xs, ys = [0.5, 1.0, 1.5, 2.0], [-1.0, -1.0, 0.0, 0.0]
    with DectrisSource(endpoint, positions=positions) as src:
        # PUB/SUB drops documents until the subscription is through: warm up with runs
        assert wait_for(
            lambda: re(count([det])) is not None and positions.documents["stop"] > 0,
            timeout=20,
            interval=0.2,
        )
        re(list_scan([det], motor1, xs, motor2, ys))
        assert wait_for(lambda: positions.documents["stop"] >= 2, timeout=10)
        push.send(enc.start())
        for k in range(5):  # four images with events, the fifth has none
            push.send(_image(k))
        push.send(enc.end())
        trains = _collect(src, 5)
        st = src.stats()
    pub.close()
    got = [
        (float(t.data["positions"]["motor1"][0]), float(t.data["positions"]["motor2"][0]))
        for t in trains[:4]
    ]
    assert got == list(zip(xs, ys, strict=True))
    assert np.isnan(trains[4].data["positions"]["motor1"][0])
    assert st["dropped"] == {"positions:no_event": 1}


def test_legacy_stream_appendix_positions(push, endpoint):
    from beamstream.dectris.simulate import EigerSimulator

    sim = EigerSimulator(shape=(32, 40), stream="v1", scan=(2, 2), compression="bslz4")
    with DectrisSource(endpoint, stream="v1", positions=UserDataPositions(["x", "y"])) as src:
        for _, parts in sim.messages(4, series_id=5):
            assert len(parts) in (1, 3, 4, 5)  # images carry the appendix as a fifth part
            push.send_multipart(parts)
        trains = _collect(src, 4)
        st = src.stats()
        start = src.series_starts[0]
    got = [(t.data["positions"]["x"][0], t.data["positions"]["y"][0]) for t in trains]
    assert got == [(sim.positions(k)["x"], sim.positions(k)["y"]) for k in range(4)]
    assert start.user_data == {"scan": [2, 2]} and st["dropped"] == {}
