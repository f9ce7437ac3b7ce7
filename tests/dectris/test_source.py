"""`DectrisSource` on real ZeroMQ sockets: grouping, channels, ids, and every bad input counted."""

from __future__ import annotations

import cbor2
import numpy as np
import pytest
import zmq

from beamstream.dectris.series import SERIES_STRIDE
from beamstream.dectris.simulate import SENTINEL, EigerSimulator
from beamstream.dectris.source import DectrisSource

from . import spec_encoder as enc


@pytest.fixture
def push(endpoint):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.bind(endpoint)
    yield sock
    sock.close()


def _drain(src: DectrisSource, n: int, timeout: float = 10.0) -> list:
    out = []
    for _ in range(n):
        t = src.get(timeout=timeout)
        if t is None:
            break
        out.append(t)
    return out


def test_simulated_series_grouped_into_trains(push, endpoint):
    sim = EigerSimulator(shape=(64, 80), channels=2, scan=(2, 3), compression="bslz4")
    with DectrisSource(endpoint, frames_per_train=4, flush_timeout=5.0) as src:
        for _, parts in sim.messages(6, series_id=3):
            push.send_multipart(parts)
        trains = _drain(src, 2)
        st = src.stats()
    assert [t.train_id for t in trains] == [3 * SERIES_STRIDE, 3 * SERIES_STRIDE + 1]
    first, last = trains
    a = first.data["eiger"]["image.threshold_1"]
    assert a.shape == (4, 64, 80) and a.dtype == np.uint32
    np.testing.assert_array_equal(a[2], sim.frames(2)["threshold_1"])
    np.testing.assert_array_equal(
        last.data["eiger"]["image.threshold_2"][1], sim.frames(5)["threshold_2"]
    )
    assert last.data["eiger"]["image.threshold_1"].shape[0] == 2  # short last group
    np.testing.assert_array_equal(first.data["eiger"]["image_id"], [0, 1, 2, 3])
    assert first.timestamp == pytest.approx(1767225600.0)  # arm date + start time of image 0
    assert last.timestamp == pytest.approx(1767225600.0 + 4 * sim.frame_time)
    assert first.get_dims("eiger", "image.threshold_1") == ("frame", "y", "x")
    assert (a[:, sim.mask != 0] == SENTINEL).all()
    assert st["images"] == 6 and st["trains"] == 2 and st["dropped_total"] == 0
    assert src.series_starts[0].series_id == 3
    assert src.series_starts[0].pixel_mask["threshold_1"].sum() == sim.mask.sum()


@pytest.mark.parametrize(
    "stream,compression", [("v1", "bslz4"), ("v1", "lz4"), ("v2", "lz4"), ("v2", "none")]
)
def test_streams_and_compressions(push, endpoint, stream, compression):
    sim = EigerSimulator(shape=(32, 48), stream=stream, compression=compression, scan=(1, 3))
    with DectrisSource(endpoint, stream=stream) as src:
        for _, parts in sim.messages(3, series_id=2):
            push.send_multipart(parts)
        trains = _drain(src, 3)
    ch = sim.channels[0]
    assert len(trains) == 3
    for k, t in enumerate(trains):
        np.testing.assert_array_equal(t.data["eiger"][f"image.{ch}"][0], sim.frames(k)[ch])


def _good_image(k: int, series=7, uid="u-7") -> bytes:
    a = np.full((16, 24), k + 1, np.uint32)
    return enc.image(series, uid, k, data={"threshold_1": enc.mda(a, "bslz4")})


def test_bad_inputs_each_counted_and_good_images_processed(push, endpoint):
    ok = np.ones((16, 24), np.uint32)
    chunk = enc.filter_chunk(np.arange(384, dtype=np.uint32).reshape(16, 24), "bslz4")
    lying = bytearray(chunk)
    lying[0:8] = (10 * ok.nbytes).to_bytes(8, "big")

    def img(k, payload):
        return enc.image(7, "u-7", k, data={"threshold_1": cbor2.CBORTag(40, [[16, 24], payload])})

    def comp(data):
        return cbor2.CBORTag(70, cbor2.CBORTag(56500, ["bslz4", 4, data]))

    messages = [
        _good_image(0),  # image before any start
        enc.start(),
        _good_image(0),
        b"\xd9\xd9\xf7\x5f\x41",  # CBOR garbage (truncated)
        enc.msg({"type": "image", "odd": cbor2.CBORTag(31337, 0)}),  # unknown tag
        img(1, comp(chunk[:40])),  # truncated compressed block
        img(2, comp(bytes(lying))),  # lying uncompressed size
        enc.image(
            7, "u-7", 3, data={"threshold_1": cbor2.CBORTag(40, [[40000, 40000], comp(chunk)])}
        ),  # decompression bomb
        enc.start(),  # a second start mid-series
        _good_image(4),
        enc.start(series_id=8, uid="u-8"),  # missing end of series 7
        _good_image(0, 8, "u-8"),
        enc.end(series_id=8, uid="u-8"),
    ]
    with DectrisSource(endpoint) as src:
        for m in messages:
            push.send(m)
        trains = _drain(src, 3, timeout=5.0)
        extra = src.get(timeout=0.3)
        st = src.stats()
    assert extra is None
    assert [t.data["eiger"]["image_id"][0] for t in trains] == [0, 4, 0]
    assert trains[0].data["eiger"]["image.threshold_1"][0, 0, 0] == 1
    assert trains[1].data["eiger"]["image.threshold_1"][0, 0, 0] == 5
    # train ids go on after series 7's (4 images declared, image 4 seen: 5 trains' worth)
    assert [t.train_id for t in trains] == [7 * SERIES_STRIDE + k for k in (0, 4, 5)]
    d = st["dropped"]
    assert d == {
        "image_before_start": 1,
        "malformed:cbor_invalid": 1,
        "malformed:unknown_tag": 1,
        "malformed:decompress_failed": 1,
        "malformed:size_mismatch": 1,
        "malformed:too_large": 1,
        "start_mid_series": 1,
        "missing_end": 1,
    }
    assert st["received"] == len(messages)


def test_new_series_asks_for_new_epoch(push, endpoint):
    with DectrisSource(endpoint, series_epoch=True) as src:
        for sid in (1, 2):
            uid = f"u-{sid}"
            push.send(enc.start(series_id=sid, uid=uid))
            push.send(_good_image(0, sid, uid))
            push.send(enc.end(series_id=sid, uid=uid))
        t1 = src.get(timeout=5)
        assert src.events() == []
        t2 = src.get(timeout=5)
        assert src.events() == ["new_epoch"]
    # contiguous: series 2 starts after the 4 images series 1 declared
    assert (t1.train_id, t2.train_id) == (SERIES_STRIDE, SERIES_STRIDE + 4)


def test_incomplete_group_flushed_when_idle(push, endpoint):
    with DectrisSource(endpoint, frames_per_train=10, flush_timeout=0.3) as src:
        push.send(enc.start())
        for k in range(3):
            push.send(_good_image(k))
        t = src.get(timeout=5)
    assert t is not None and t.data["eiger"]["image.threshold_1"].shape == (3, 16, 24)


def test_images_that_cannot_be_stacked_are_counted(push, endpoint):
    start = enc.msg(
        {"type": "start", "series_id": 2, "series_unique_id": "s", "channels": ["threshold_1"]}
    )  # no image size declared
    a, b = np.ones((16, 24), np.uint32), np.ones((8, 24), np.uint32)
    with DectrisSource(endpoint, frames_per_train=2) as src:
        push.send(start)
        push.send(enc.image(2, "s", 0, data={"threshold_1": enc.mda(a)}))
        push.send(enc.image(2, "s", 1, data={"threshold_1": enc.mda(b)}))
        push.send(enc.end(2, "s"))
        t = src.get(timeout=5)
        st = src.stats()
    assert t.data["eiger"]["image.threshold_1"].shape == (1, 16, 24)
    assert st["dropped"] == {"inconsistent_image": 1}
