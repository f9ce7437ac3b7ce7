"""Defect 2 and the overload suite: under overload every lost train is counted.

PULL and SUB, every allowed policy: a fast sender, a slow consumer. Every train in the received
train-id window is either delivered or counted (``overload`` in the receiver's queue,
``lost:gap`` when ZeroMQ dropped it before it arrived). SUB refuses ``block``.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from beamstream.config import ConfigError, parse_config
from beamstream.streamer import Receiver, Sender, Train
from tests.conftest import wait_for

N_TRAINS = 300


def _train(tid: int) -> Train:
    return Train(tid, 1.7e9, {"DET": {"image.data": np.full(256, tid % 65536, np.uint16)}})


def _send_all(sender: Sender, first: int, n: int, stop: threading.Event) -> None:
    for tid in range(first, first + n):
        while not stop.is_set() and not sender.send(_train(tid), timeout=0.2):
            pass


@pytest.mark.parametrize(
    ("socket", "policy"),
    [
        ("PULL", "block"),
        ("PULL", "drop_oldest"),
        ("PULL", "drop_newest"),
        ("SUB", "drop_oldest"),
        ("SUB", "drop_newest"),
    ],
)
def test_overload_every_train_delivered_or_counted(endpoint: str, socket: str, policy: str) -> None:
    sender = Sender(endpoint, socket={"PULL": "PUSH", "SUB": "PUB"}[socket])
    rx = Receiver(endpoint, socket, queue=4, policy=policy)
    stop = threading.Event()
    delivered: list[int] = []
    try:
        # a SUB joins late: send until the first train arrives, then the burst
        tid = 1
        while not delivered and tid < 500:
            sender.send(_train(tid), timeout=0.2)
            tid += 1
            if (t := rx.get(0.02)) is not None:
                delivered.append(t.train_id)
        assert delivered, "the receiver never connected"
        feeder = threading.Thread(target=_send_all, args=(sender, tid, N_TRAINS, stop))
        feeder.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            t = rx.get(0.3)
            if t is None and not feeder.is_alive():
                break
            if t is not None:
                delivered.append(t.train_id)
                time.sleep(0.002)  # a slow consumer
        stop.set()
        feeder.join(5)
        stats = rx.stats()
    finally:
        stop.set()
        rx.close()
        sender.close()
    window = stats["last_train_id"] - stats["first_train_id"] + 1
    dropped = stats["dropped"]
    counted = dropped.get("overload", 0) + dropped.get("lost:gap", 0)
    assert len(delivered) == len(set(delivered))
    assert len(delivered) + counted == window, (len(delivered), dropped, window)
    assert stats["received"] + dropped.get("lost:gap", 0) == window
    if policy == "block":
        assert counted == 0 and window == tid + N_TRAINS - 1
    else:
        assert counted > 0  # the overload really happened


def test_sub_refuses_block(endpoint: str) -> None:
    with pytest.raises(ValueError, match="cannot push back"):
        Receiver(endpoint, "SUB", policy="block", start=False)
    with pytest.raises(ConfigError, match="source.policy: .*cannot push back"):
        parse_config('version = 1\n[source]\nsocket = "SUB"\npolicy = "block"\n', "x.toml")
    cfg = parse_config('version = 1\n[source]\nsocket = "SUB"\n', "x.toml")
    assert cfg.source.policy == "drop_oldest"
    cfg = parse_config("version = 1\n", "x.toml")
    assert cfg.with_source(socket="SUB").source.policy == "drop_oldest"


def test_gap_counter_learns_stride() -> None:
    from beamstream.streamer.gaps import GapCounter

    g = GapCounter()
    for t in (10, 16, 18, 20, 22):  # the first step is a gap: recounted once the stride is known
        g.see(t)
    assert g.lost == 2 and g.stride == 2
    g.see(5)  # a restarted source: a new sequence
    g.see(6)
    g.see(9)
    assert g.restarts == 1 and g.lost == 4
    h = GapCounter()
    for t in (0, 46, 102, 148):  # heavy loss: the steps share a divisor (2) never seen as a step
        h.see(t)
    assert h.stride == 1 and h.lost == 145


def test_wait_for_is_bounded() -> None:
    assert not wait_for(lambda: False, 0.05)
