"""Defect 11: ZeroMQ's maximum message size comes from the configured limits, so an oversized
frame is refused before it is received (it used to be received whole, then rejected)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from beamstream.config import parse_config
from beamstream.streamer import Receiver, Train, encode_train
from beamstream.streamer.protocol import DecodeLimits, MalformedMessage, decode_train
from beamstream.streamer.receiver import receiver_for


def _train(tid: int, n: int) -> Train:
    return Train(tid, 1.7e9, {"DET": {"image.data": np.zeros(n, np.uint8)}})


@pytest.mark.timeout(30)
def test_oversized_frame_never_received(tcp_endpoint: str) -> None:
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.bind(tcp_endpoint)
    rx = Receiver(tcp_endpoint, "PULL", queue=16, limits=DecodeLimits(max_frame_bytes=100_000))
    try:
        push.send_multipart(encode_train(_train(1, 1000)))
        assert (t := rx.get(5)) is not None and t.train_id == 1
        push.send_multipart(encode_train(_train(2, 5_000_000)))  # refused by ZeroMQ
        got: list[int] = []
        tid = 3
        deadline = time.monotonic() + 15
        while not got and time.monotonic() < deadline:  # the receiver reconnects
            if push.poll(100, zmq.POLLOUT):
                push.send_multipart(encode_train(_train(tid, 1000)))
                tid += 1
            if (t := rx.get(0.05)) is not None:
                got.append(t.train_id)
        assert got and got[0] > 2  # later trains arrive, the oversized one never did
        stats = rx.stats()
        assert stats["bytes"] < 1_000_000 and stats["reconnects"] >= 1
        assert stats["dropped"]["lost:connection dropped (oversized or invalid frame)"] == 1
    finally:
        rx.close()
        push.close(linger=0)


def test_limit_from_config_and_in_decoder() -> None:
    cfg = parse_config("version = 1\n[source]\nmax_frame_bytes = 4096\n", "x.toml")
    rx = receiver_for(cfg, start=False)
    assert rx.limits.max_frame_bytes == 4096
    with pytest.raises(MalformedMessage, match="oversized"):
        decode_train(encode_train(_train(1, 10_000)), DecodeLimits(max_frame_bytes=4096))
