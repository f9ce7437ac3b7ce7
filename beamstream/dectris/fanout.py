"""Scale-out of a DECTRIS stream: one receiver PULLs, workers get the images still compressed.

The detector hands each message to exactly one PULL client, so only one of several clients would
see a series' start (geometry, mask, channels). `Relay` is that one client: it PULLs from the
detector, keeps every series' start message, and PUSHes each image (compressed, as received) to
the workers as ``[RELAY_MAGIC, series_unique_id, info_endpoint, base, *message parts]``
(``base``: the series' first train id as the relay counts them, so that every worker numbers
the trains alike). A worker's
`DectrisSource` recognises relayed messages and asks the relay's info socket (REP, on the port
after the PUSH port) for the start message of a series it has not seen, once. Series ends are
counted by the relay, not forwarded (workers flush on idle; with workers, every image is its own
train: ``frames_per_train = 1``). Workers assume no image order; their states merge as usual.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import zmq

from beamstream.config import ConfigError, PipelineConfig

from .cbor import decode_cbor
from .legacy import parse_v1
from .limits import DEFAULT_LIMITS, DectrisLimits, MalformedMessage
from .messages import Image, SeriesEnd, SeriesStart, parse_v2
from .series import SeriesTracker

__all__ = ["Relay", "RELAY_MAGIC", "info_endpoint", "fetch_start", "check_fanout"]

log = logging.getLogger(__name__)
RELAY_MAGIC = b"beamstream-dectris-relay/1"
_MAX_STARTS = 8
_POLL_MS = 100


def info_endpoint(push_endpoint: str) -> str:
    """The info (REP) endpoint of a relay whose PUSH endpoint is ``tcp://HOST:PORT``."""
    head, port = push_endpoint.rsplit(":", 1)
    return f"{head}:{int(port) + 1}"


def fetch_start(info: str, uid: bytes = b"", timeout: float = 5.0) -> list[bytes] | None:
    """The raw parts of a series' start message from a relay (``uid`` empty: the latest)."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(info)
    try:
        sock.send(uid)
        if not sock.poll(int(timeout * 1000)):
            return None
        parts = sock.recv_multipart()
        return parts if parts and parts[0] else None
    finally:
        sock.close(linger=0)


def check_fanout(config: PipelineConfig) -> None:
    """Raise `ConfigError` unless a DECTRIS source can be fanned out (one image per train)."""
    n = config.source.options.get("frames_per_train", 1)
    if n != 1:
        raise ConfigError(
            f"{config.path}: source.frames_per_train: expected 1 with workers (images of one "
            f"train would reach different workers), got {n!r}"
        )


class Relay:
    """PULL a DECTRIS stream, fan images out to workers with their series' start available.

    Parameters
    ----------
    endpoint
        The detector's PUSH endpoint.
    stream
        ``"v2"`` or ``"v1"``.
    host
        Interface the relay binds (``127.0.0.1``; a cluster's workers need a reachable one).
    limits
        Size limits for parsing.
    peers
        Workers to wait for: images are held (at most ``hold``, then the relay stops pulling
        and the detector waits) until that many have connected, so that an early worker does
        not take them all.
    hold
        Images held while waiting for the workers.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        stream: str = "v2",
        host: str = "127.0.0.1",
        limits: DectrisLimits = DEFAULT_LIMITS,
        peers: int = 1,
        hold: int = 64,
        context: zmq.Context | None = None,
    ):
        self.endpoint = endpoint
        self.stream = stream
        self.limits = limits
        self._ctx = context or zmq.Context.instance()
        self._out, self.push_endpoint = self._bind_pair(host)
        self._monitor = self._out.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
        )
        self.peers = peers
        self.connected = 0
        self.hold = hold
        self._held: collections.deque[list[Any]] = collections.deque()
        self.info = info_endpoint(self.push_endpoint)
        self._starts: collections.OrderedDict[bytes, list[bytes]] = collections.OrderedDict()
        self._latest: SeriesStart | None = None
        self.tracker = SeriesTracker(1)  # the series' train-id bases, counted as workers would
        self.counts: collections.Counter[str] = collections.Counter()
        self.dropped: collections.Counter[str] = collections.Counter()
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dectris relay", daemon=True)
        self._thread.start()

    def _bind_pair(self, host: str) -> tuple[zmq.Socket, str]:
        """PUSH on a free port P with the info REP on P + 1."""
        for _ in range(50):
            out = self._ctx.socket(zmq.PUSH)
            out.setsockopt(zmq.LINGER, 0)
            out.set_hwm(16)
            port = out.bind_to_random_port(f"tcp://{host}", 20000, 60000)
            rep = self._ctx.socket(zmq.REP)
            rep.setsockopt(zmq.LINGER, 0)
            try:
                rep.bind(f"tcp://{host}:{port + 1}")
            except zmq.ZMQError:
                out.close()
                rep.close()
                continue
            self._rep = rep
            return out, f"tcp://{host}:{port}"
        raise OSError("no free pair of ports for the relay")

    def wait_series(self, timeout: float | None = None) -> SeriesStart | None:
        """The first series start received (None after ``timeout`` s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._latest is None and not self._stop.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._lock.wait(0.1)
            return self._latest

    def stats(self) -> dict[str, Any]:
        with self._lock:
            dropped = dict(self.dropped)
            for reason, n in self.tracker.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + n
            return {"relay": self.push_endpoint, **self.counts, "dropped": dropped}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        src = self._ctx.socket(zmq.PULL)
        src.setsockopt(zmq.LINGER, 0)
        src.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes)
        src.connect(self.endpoint)
        poller = zmq.Poller()
        poller.register(self._rep, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        pulling = False
        try:
            while not self._stop.is_set():
                want = len(self._held) < self.hold  # else the detector waits
                if want != pulling:
                    (poller.register if want else poller.unregister)(src)
                    pulling = want
                ready = dict(poller.poll(_POLL_MS))
                if self._monitor in ready:
                    self._peer_event()
                if self._rep in ready:
                    self._answer(self._rep.recv())
                if src in ready:
                    self._relay(src.recv_multipart(copy=False))
                self._release()
        finally:
            self._out.disable_monitor()
            for s in (src, self._out, self._rep, self._monitor):
                s.close(linger=0)

    def _peer_event(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        event = recv_monitor_message(self._monitor)["event"]
        self.connected += 1 if event == zmq.EVENT_HANDSHAKE_SUCCEEDED else -1

    def _release(self) -> None:
        """Send the held images once the expected workers are connected."""
        while self._held and self.connected >= self.peers and not self._stop.is_set():
            if not self._out.poll(_POLL_MS, zmq.POLLOUT):
                return
            self._out.send_multipart(self._held.popleft(), copy=False)
            self.counts["forwarded"] += 1

    def _answer(self, uid: bytes) -> None:
        with self._lock:
            if not uid and self._starts:
                parts = next(reversed(self._starts.values()))
            else:
                parts = self._starts.get(uid, [b""])
        self._rep.send_multipart(parts)

    def _parse(self, frames: list[zmq.Frame]) -> Any:
        if self.stream == "v2":
            return parse_v2(decode_cbor(frames[0].buffer, self.limits), self.limits)
        return parse_v1([f.bytes for f in frames], self.limits)

    def _relay(self, frames: list[zmq.Frame]) -> None:
        self.counts["received"] += 1
        try:
            msg = self._parse(frames)
        except MalformedMessage as e:
            with self._lock:
                self.dropped[f"malformed:{e.reason}"] += 1
            return
        uid = msg.unique_id.encode()
        usable = not isinstance(msg, Image) or self.tracker.check_image(msg) is None
        self.tracker.feed(msg)
        if not usable:
            return
        if isinstance(msg, SeriesStart):
            with self._lock:
                self._starts[uid] = [f.bytes for f in frames]
                while len(self._starts) > _MAX_STARTS:
                    self._starts.popitem(last=False)
                if self._latest is None:
                    self._latest = msg
                self.counts["series"] += 1
                self._lock.notify_all()
        elif isinstance(msg, SeriesEnd):
            self.counts["ends"] += 1
        elif isinstance(msg, Image):
            head = [RELAY_MAGIC, uid, self.info.encode(), str(self.tracker.base).encode()]
            self._held.append(head + list(frames))
