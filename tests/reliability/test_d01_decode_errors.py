"""Defect 1: no message ends a live run; any decoding exception is counted as malformed."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
import zmq

from beamstream.streamer import Receiver, Train, encode_train
from beamstream.streamer import receiver as receiver_module
from beamstream.streamer.protocol import MalformedMessage, decode_train
from tests.conftest import wait_for


def _tid_list_message() -> list[bytes]:
    header = {"source": "X", "content": "msgpack", "metadata": {"timestamp.tid": [1, 2]}}
    return [msgpack.packb(header), msgpack.packb({})]


def test_unhashable_train_id_is_malformed() -> None:
    with pytest.raises(MalformedMessage) as e:
        decode_train(_tid_list_message())
    assert e.value.reason == "no train id"


def _train(tid: int) -> Train:
    return Train(tid, 1.7e9 + tid, {"DET": {"image.data": np.full(4, tid, np.uint16)}})


def test_receiver_survives_any_decode_exception(endpoint: str, monkeypatch) -> None:
    """A decoder bug (any exception type) is counted with its type; later trains still arrive."""
    real = receiver_module.decode_train

    def flaky(frames, limits):  # noqa: ANN001, ANN202 - stands in for a decoder bug
        train = real(frames, limits)
        if train.train_id % 3 == 0:
            raise RuntimeError("decoder bug")
        return train

    monkeypatch.setattr(receiver_module, "decode_train", flaky)
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.bind(endpoint)
    rx = Receiver(endpoint, "PULL", queue=100, policy="block")
    try:
        push.send_multipart(_tid_list_message())
        for tid in range(1, 13):
            push.send_multipart(encode_train(_train(tid)))
        got = []
        assert wait_for(lambda: rx.stats()["received"] == 13, 5.0)
        while (t := rx.get(0.2)) is not None:
            got.append(t.train_id)
        assert sorted(got) == [1, 2, 4, 5, 7, 8, 10, 11]
        drops = rx.stats()["dropped"]
        assert drops["malformed:no train id"] == 1
        assert drops["malformed:RuntimeError"] == 4
        assert not rx.closed
    finally:
        rx.close()
        push.close(linger=0)
