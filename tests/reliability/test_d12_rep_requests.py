"""Defect 12: the REP sender echoes at most 64 bytes of a bad request, logs bad requests
rate-limited, and refuses requests over 4 KiB (it used to echo 50 MB back and log every one)."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import zmq

from beamstream.streamer import Sender, Train


@pytest.mark.timeout(30)
def test_bad_requests_are_short_echoes_and_rate_limited(endpoint: str, caplog) -> None:
    sender = Sender(endpoint, socket="REP")
    stop = threading.Event()
    train = Train(1, 1.7e9, {"DET": {"x": np.zeros(4)}})

    def serve() -> None:
        while not stop.is_set():
            sender.send(train, timeout=0.1)

    t = threading.Thread(target=serve)
    t.start()
    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoint)
    try:
        with caplog.at_level(logging.WARNING, logger="beamstream.streamer.sender"):
            for _ in range(50):
                req.send(b"x" * 1000)
                assert req.poll(5000)
                reply = req.recv()
                assert reply == b"Error: bad request " + b"x" * 64 + b"..."
        assert sender.bad_requests == 50
        assert len([r for r in caplog.records if "bad request" in r.getMessage()]) == 1
        req.send(b"next")
        assert req.poll(5000) and req.recv_multipart()
    finally:
        stop.set()
        t.join(5)
        req.close(linger=0)
        sender.close()


@pytest.mark.timeout(30)
def test_huge_request_is_refused_by_zeromq(endpoint: str) -> None:
    sender = Sender(endpoint, socket="REP")
    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoint)
    try:
        req.send(b"x" * 10_000_000)
        assert not sender.send(Train(1, None, {"DET": {"n": 1}}), timeout=1.0)
        assert sender.bad_requests == 0  # never received, never echoed
    finally:
        req.close(linger=0)
        sender.close()
