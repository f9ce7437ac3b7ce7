"""`Receiver` behaviour: sockets, queue policies, back-pressure, stats, reconnects, timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import zmq

from beamstream.streamer import Receiver, Sender, Train, encode_train


def _train(tid: int, size: int = 16) -> Train:
    """A train with one small array whose values encode the train id."""
    return Train(
        tid,
        1_700_000_000.0 + tid,
        {"DET": {"image.data": np.full(size, tid % 65536, np.uint16), "tid": tid}},
    )


class SenderThread:
    """Send trains from a beamstream `Sender` in a thread; always joined by `stop`."""

    def __init__(
        self, sender: Sender, trains: list[Train], timeout: float = 5.0, pace: float = 0.0
    ):
        self.sender = sender
        self.trains = trains
        self.timeout = timeout
        self.pace = pace
        self.results: list[bool] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for t in self.trains:
            if self._stop.is_set():
                return
            ok = self.sender.send(t, timeout=self.timeout)
            self.results.append(ok)
            if not ok:
                return
            if self.pace:
                time.sleep(self.pace)

    def stop(self) -> None:
        """Stop after the current send (bounded by its timeout) and join."""
        self._stop.set()
        self.thread.join(timeout=self.timeout + 2)
        assert not self.thread.is_alive()


def _bind_sender(endpoint: str, socket: str, attempts: int = 50) -> Sender:
    """Bind a Sender, retrying briefly while a just-closed one still holds the address."""
    for _ in range(attempts):
        try:
            return Sender(endpoint, socket=socket)
        except OSError:
            time.sleep(0.05)
    return Sender(endpoint, socket=socket)


def _take(receiver: Receiver, n: int, timeout: float = 5.0) -> list[Train]:
    out = []
    for _ in range(n):
        t = receiver.get(timeout=timeout)
        assert t is not None, f"only {len(out)} of {n} trains arrived"
        out.append(t)
    return out


# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(15)
@pytest.mark.parametrize("kind", ["REQ", "PULL"])
def test_receive_in_order(kind: str, endpoint: str, cleanup: Callable) -> None:
    sender = Sender(endpoint, socket={"REQ": "REP", "PULL": "PUSH"}[kind])
    cleanup(sender.close)
    feeder = SenderThread(sender, [_train(i) for i in range(20)])
    cleanup(feeder.stop)
    receiver = Receiver(endpoint, socket=kind, timeout=5)
    cleanup(receiver.close)
    trains = _take(receiver, 20)
    assert [t.train_id for t in trains] == list(range(20))
    for t in trains:
        np.testing.assert_array_equal(
            t.data["DET"]["image.data"], np.full(16, t.train_id, np.uint16)
        )
        assert t.timestamp == 1_700_000_000.0 + t.train_id
    feeder.stop()
    assert feeder.results == [True] * 20
    assert receiver.stats()["dropped"] == {}


@pytest.mark.timeout(15)
def test_receive_sub(endpoint: str, cleanup: Callable) -> None:
    sender = Sender(endpoint, socket="PUB")
    cleanup(sender.close)
    receiver = Receiver(endpoint, socket="SUB", queue=100, policy="drop_newest", timeout=5)
    cleanup(receiver.close)
    tid = 0
    deadline = time.monotonic() + 5
    while receiver.stats()["received"] == 0 and time.monotonic() < deadline:  # slow joiner
        sender.send(_train(tid))
        tid += 1
        time.sleep(0.01)
    first = receiver.get(timeout=5)
    assert first is not None
    start = tid
    for i in range(start, start + 10):
        sender.send(_train(i))
        time.sleep(0.005)
    got = []
    while len(got) < 10 and (t := receiver.get(timeout=2)) is not None:
        if t.train_id >= start:
            got.append(t.train_id)
    assert got == list(range(start, start + 10))


# ---------------------------------------------------------------------------------------------
# queue policies
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(15)
@pytest.mark.parametrize(
    ("policy", "kept"), [("drop_newest", [0, 1, 2]), ("drop_oldest", [7, 8, 9])]
)
def test_drop_policies(
    policy: str, kept: list[int], endpoint: str, cleanup: Callable, wait_until: Callable
) -> None:
    sender = Sender(endpoint, socket="PUSH")
    cleanup(sender.close)
    receiver = Receiver(endpoint, socket="PULL", queue=3, policy=policy, timeout=1)
    cleanup(receiver.close)
    feeder = SenderThread(sender, [_train(i) for i in range(10)])
    cleanup(feeder.stop)
    assert wait_until(lambda: receiver.stats()["received"] == 10, timeout=5)
    feeder.stop()
    stats = receiver.stats()
    assert stats["dropped"] == {"overload": 7}
    assert stats["queued"] == 3
    assert stats["last_train_id"] == 9
    assert [t.train_id for t in receiver] == kept  # iteration ends after the 1 s timeout
    stats = receiver.stats()
    assert stats["delivered"] == 3 and stats["queued"] == 0


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["PULL", "REQ"])
def test_block_policy_applies_back_pressure_without_loss(
    kind: str, endpoint: str, cleanup: Callable
) -> None:
    n = 30
    sender = Sender(endpoint, socket={"REQ": "REP", "PULL": "PUSH"}[kind])
    cleanup(sender.close)
    receiver = Receiver(endpoint, socket=kind, queue=2, policy="block", timeout=5)
    cleanup(receiver.close)
    # 4 MB trains: too large for socket buffers to hide the back-pressure
    trains = [_train(i, size=2 << 20) for i in range(n)]
    feeder = SenderThread(sender, trains, timeout=10)
    cleanup(feeder.stop)
    time.sleep(1.0)  # the consumer stalls
    stalled_sent = sender.sent
    stalled = receiver.stats()
    assert stalled["queued"] == 2
    assert stalled["dropped"] == {}
    assert stalled_sent < n // 2, f"sender was not slowed down: {stalled_sent} of {n} sent"
    if kind == "REQ":  # no request is made while the queue is full
        assert stalled["received"] == 2 and stalled_sent == 2
    got = _take(receiver, n)
    assert [t.train_id for t in got] == list(range(n))
    assert got[-1].data["DET"]["image.data"][-1] == n - 1
    feeder.stop()
    assert feeder.results == [True] * n
    assert receiver.stats()["dropped"] == {}


# ---------------------------------------------------------------------------------------------
# stats
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(15)
def test_stats_counts_bytes_and_rates(
    endpoint: str, cleanup: Callable, wait_until: Callable
) -> None:
    n = 25
    trains = [_train(i, size=50_000) for i in range(n)]
    sizes = [sum(memoryview(f).nbytes for f in encode_train(t)) for t in trains]
    sender = Sender(endpoint, socket="PUSH")
    cleanup(sender.close)
    receiver = Receiver(endpoint, socket="PULL", queue=n, timeout=5)
    cleanup(receiver.close)
    fresh = receiver.stats()
    assert fresh["received"] == 0 and fresh["trains_per_s"] == 0.0 and fresh["MB_per_s"] == 0.0
    assert fresh["endpoint"] == endpoint and fresh["socket"] == "PULL"
    feeder = SenderThread(sender, trains, pace=0.01)  # ~100 Hz at most
    cleanup(feeder.stop)
    assert wait_until(lambda: receiver.stats()["received"] == n, timeout=5)
    stats = receiver.stats()
    assert stats["bytes"] == sum(sizes)
    assert stats["received"] == n and stats["delivered"] == 0 and stats["queued"] == n
    assert stats["last_train_id"] == n - 1
    assert 5 < stats["trains_per_s"] < 150, stats["trains_per_s"]  # paced at <= 100 Hz
    # all trains have the same size: bytes rate = train rate x train size
    assert stats["MB_per_s"] == pytest.approx(stats["trains_per_s"] * sizes[0] / 1e6, rel=1e-9)
    assert stats["sources"] == {"DET": {"image.data": "uint16[50000]", "tid": "int"}}
    assert stats["uptime_s"] > 0
    _take(receiver, 3)
    assert receiver.stats()["delivered"] == 3 and receiver.stats()["queued"] == n - 3
    t0 = receiver.get(timeout=1)
    assert t0 is not None and t0.nbytes == sizes[3]


@pytest.mark.timeout(15)
def test_rates_fall_to_zero_after_the_window(
    endpoint: str, cleanup: Callable, wait_until: Callable
) -> None:
    sender = Sender(endpoint, socket="PUSH")
    cleanup(sender.close)
    receiver = Receiver(endpoint, socket="PULL", queue=10, timeout=5)
    cleanup(receiver.close)
    feeder = SenderThread(sender, [_train(i) for i in range(5)], pace=0.01)
    cleanup(feeder.stop)
    assert wait_until(lambda: receiver.stats()["received"] == 5, timeout=5)
    assert receiver.stats()["trains_per_s"] > 0
    # the rate window is 2 s; with no new trains the rate decays as the window ages
    time.sleep(2.5)
    assert receiver.stats()["trains_per_s"] < 5


# ---------------------------------------------------------------------------------------------
# reconnects, timeouts, closing
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_req_reconnects_when_the_source_restarts(
    transport: str, endpoint: str, tcp_endpoint: str, cleanup: Callable
) -> None:
    addr = endpoint if transport == "ipc" else tcp_endpoint
    first = Sender(addr, socket="REP")
    cleanup(first.close)
    feeder = SenderThread(first, [_train(i) for i in range(3)])
    cleanup(feeder.stop)
    receiver = Receiver(addr, socket="REQ", queue=10, request_timeout=0.5, timeout=10)
    cleanup(receiver.close)
    assert [t.train_id for t in _take(receiver, 3)] == [0, 1, 2]
    feeder.stop()
    # the receiver's next request has reached the old source, and is lost with it
    assert first._sock.poll(5000, zmq.POLLIN)
    first.close()
    time.sleep(0.2)
    second = _bind_sender(addr, "REP")
    cleanup(second.close)
    feeder2 = SenderThread(second, [_train(i) for i in range(100, 105)], timeout=10)
    cleanup(feeder2.stop)
    assert [t.train_id for t in _take(receiver, 5, timeout=10)] == list(range(100, 105))
    feeder2.stop()
    assert feeder2.results == [True] * 5
    assert receiver.stats()["reconnects"] >= 1
    assert receiver.stats()["dropped"] == {}


@pytest.mark.timeout(15)
def test_timeout_ends_iteration(endpoint: str, cleanup: Callable) -> None:
    sender = Sender(endpoint, socket="PUSH")
    cleanup(sender.close)
    receiver = Receiver(endpoint, socket="PULL", queue=10, timeout=0.5)
    cleanup(receiver.close)
    feeder = SenderThread(sender, [_train(i) for i in range(4)])
    cleanup(feeder.stop)
    t0 = time.monotonic()
    got = [t.train_id for t in receiver]
    elapsed = time.monotonic() - t0
    assert got == [0, 1, 2, 3]
    assert 0.5 <= elapsed < 4.0
    assert not receiver.closed  # a timeout ends iteration, not the receiver
    assert receiver.get(timeout=0.05) is None


@pytest.mark.timeout(15)
def test_close_ends_iteration_and_get(endpoint: str, cleanup: Callable) -> None:
    receiver = Receiver(endpoint, socket="PULL", timeout=None)
    cleanup(receiver.close)
    got: list[Train] = []
    consumer = threading.Thread(target=lambda: got.extend(receiver), daemon=True)
    consumer.start()
    time.sleep(0.2)
    assert consumer.is_alive()
    t0 = time.monotonic()
    receiver.close()
    consumer.join(timeout=3)
    assert not consumer.is_alive() and got == []
    assert time.monotonic() - t0 < 3
    assert receiver.closed
    assert receiver.get() is None  # no wait once closed
    assert not receiver._thread.is_alive()


@pytest.mark.timeout(10)
def test_context_manager_and_argument_checks(endpoint: str) -> None:
    with Receiver(endpoint, socket="pull") as receiver:
        assert receiver.kind == "PULL"
        assert not receiver.closed
    assert receiver.closed
    with pytest.raises(ValueError, match="socket 'DEALER'"):
        Receiver(endpoint, socket="DEALER", start=False)
    with pytest.raises(ValueError, match="policy 'lossy'"):
        Receiver(endpoint, policy="lossy", start=False)
    with pytest.raises(ValueError, match="queue"):
        Receiver(endpoint, queue=0, start=False)
    assert Receiver("4545", start=False).endpoint == "tcp://127.0.0.1:4545"


@pytest.mark.timeout(10)
def test_sender_binds_any_free_port_and_refuses_a_used_one(cleanup: Callable) -> None:
    sender = Sender("tcp://127.0.0.1:0", socket="PUSH")
    cleanup(sender.close)
    port = int(sender.endpoint.rsplit(":", 1)[1])
    assert sender.endpoint == f"tcp://127.0.0.1:{port}" and port > 0
    with pytest.raises(OSError, match="cannot bind PUSH socket"):
        Sender(sender.endpoint, socket="PUSH")
    receiver = Receiver(sender.endpoint, socket="PULL", timeout=5)
    cleanup(receiver.close)
    assert sender.send(_train(5), timeout=5)
    t = receiver.get(timeout=5)
    assert t is not None and t.train_id == 5
    assert isinstance(zmq.zmq_version(), str)
