"""`Receiver`: a background thread that receives and decodes trains into a bounded queue."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import zmq

from beamstream.config import PipelineConfig, SourceConfig
from beamstream.streamer.curve import CurveClient, curve_client_for
from beamstream.streamer.gaps import GapCounter
from beamstream.streamer.protocol import (
    DEFAULT_LIMITS,
    DecodeLimits,
    MalformedMessage,
    decode_train,
)
from beamstream.streamer.ratelog import RateLimitedLog
from beamstream.streamer.sender import normalize_endpoint
from beamstream.streamer.train import Train
from beamstream.streamer.watch import ConnectionWatch

__all__ = ["Receiver", "POLICIES", "CLIENT_SOCKETS", "receiver_for", "receiver_options"]

log = logging.getLogger(__name__)

CLIENT_SOCKETS = {"REQ": zmq.REQ, "SUB": zmq.SUB, "PULL": zmq.PULL}
POLICIES = ("block", "drop_oldest", "drop_newest")
_POLL_MS = 100
_RATE_WINDOW_S = 2.0


class _Rebuild(Exception):
    """The socket must be rebuilt: no reply to a REQ request in time, or a connection that
    ZeroMQ gave up (after a protocol error such as an oversized frame)."""


class Receiver:
    """Receive Karabo Bridge trains in a background thread; iterate to get decoded `Train` s.

    Parameters
    ----------
    endpoint
        Where the source binds, e.g. ``tcp://127.0.0.1:4545`` or ``ipc:///tmp/x``.
    socket
        ``"REQ"`` (asks ``next`` for each train), ``"SUB"`` or ``"PULL"``.
    queue
        Bound of the queue of decoded trains waiting for the consumer.
    policy
        What happens when the queue is full (default: ``"block"``, with SUB ``"drop_oldest"``):
        ``"block"`` (stop receiving; the source is slowed
        down by ZeroMQ back-pressure), ``"drop_oldest"`` or ``"drop_newest"`` (counted as
        ``overload`` drops). ``"block"`` is refused with SUB, which cannot push back.
        Trains lost before they arrive (gaps in the train ids, e.g. dropped by ZeroMQ's
        high-water mark) are counted as ``lost:gap`` on every socket type.
    timeout
        Seconds without a train after which iteration ends (None: wait until `close`).
    request_timeout
        REQ only: seconds to wait for a reply before the socket is rebuilt and ``next`` asked
        again (a restarted source loses the pending request).
    hwm
        Receive high-water mark of the socket (messages).
    curve
        CURVE keys (`beamstream.streamer.curve.CurveClient`): encrypted, authenticated link to
        a source serving with the matching server key; None (default): plain ZeroMQ.
    limits
        Size limits applied while decoding; ``max_frame_bytes`` is also ZeroMQ's maximum message
        size on the socket, so an oversized frame is refused before it is received.
    """

    def __init__(
        self,
        endpoint: str,
        socket: str = "REQ",
        *,
        queue: int = 4,
        policy: str | None = None,
        timeout: float | None = None,
        request_timeout: float = 5.0,
        hwm: int = 2,
        limits: DecodeLimits = DEFAULT_LIMITS,
        context: zmq.Context | None = None,
        start: bool = True,
        curve: CurveClient | None = None,
    ):
        kind = socket.upper()
        if kind not in CLIENT_SOCKETS:
            raise ValueError(f"socket {socket!r}: expected one of {', '.join(CLIENT_SOCKETS)}")
        if policy is None:
            policy = "drop_oldest" if kind == "SUB" else "block"
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}: expected one of {', '.join(POLICIES)}")
        if kind == "SUB" and policy == "block":
            raise ValueError(
                "policy 'block' with socket SUB: a SUB socket cannot push back (ZeroMQ drops "
                "for a slow subscriber); use drop_oldest or drop_newest"
            )
        if queue < 1:
            raise ValueError(f"queue: expected a positive integer, got {queue!r}")
        self.endpoint = normalize_endpoint(endpoint)
        self.kind = kind
        self.maxlen = queue
        self.policy = policy
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.hwm = hwm
        self.limits = limits
        self.curve = curve
        self._ctx = context or zmq.Context.instance()
        self._queue: collections.deque[Train] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._counts: collections.Counter[str] = collections.Counter()
        self._dropped: collections.Counter[str] = collections.Counter()
        self._window: collections.deque[tuple[float, int]] = collections.deque()
        self._sources: dict[str, dict[str, str]] = {}
        self._sources_at = 0.0
        self._first_tid: int | None = None
        self._last_tid: int | None = None
        self._last_at: float | None = None  # unix time of the last message
        self._gaps = GapCounter()
        self._watch: ConnectionWatch | None = None
        self._watch_at = 0.0
        self._started = time.monotonic()
        self._badlog = RateLimitedLog(log, interval=5.0)
        self._thread = threading.Thread(
            target=self._run, name=f"receiver {self.endpoint}", daemon=True
        )
        if start:
            self.start()

    # -- consumer side ------------------------------------------------------------------------
    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def get(self, timeout: float | None = None) -> Train | None:
        """The next train, or None after ``timeout`` seconds or once the receiver is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._stop.is_set():
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(_POLL_MS / 1000 if left is None else min(left, _POLL_MS / 1000))
            train = self._queue.popleft()
            self._counts["delivered"] += 1
            self._cond.notify_all()
            return train

    def __iter__(self) -> Iterator[Train]:
        while True:
            train = self.get(self.timeout)
            if train is None:
                return
            yield train

    def stats(self) -> dict[str, Any]:
        """Counters and rates: received, delivered, dropped by reason, bytes, rates, sources."""
        now = time.monotonic()
        with self._cond:
            self._trim_window(now)
            span = max(now - self._window[0][0], 1e-9) if len(self._window) > 1 else 0.0
            n_win = len(self._window) - 1
            bytes_win = sum(b for _, b in list(self._window)[1:])
            dropped = dict(self._dropped)
            if self._gaps.lost:
                dropped["lost:gap"] = self._gaps.lost
            return {
                "endpoint": self.endpoint,
                "socket": self.kind,
                "received": self._counts["received"],
                "delivered": self._counts["delivered"],
                "dropped": dropped,
                "dropped_total": sum(dropped.values()),
                "bytes": self._counts["bytes"],
                "reconnects": self._counts["reconnects"],
                "source_restarts": self._gaps.restarts,
                "queued": len(self._queue),
                "trains_per_s": n_win / span if span else 0.0,
                "MB_per_s": bytes_win / span / 1e6 if span else 0.0,
                "first_train_id": self._first_tid,
                "last_train_id": self._last_tid,
                "uptime_s": now - self._started,
                "last_received_at": self._last_at,
                "sources": {s: dict(k) for s, k in self._sources.items()},
            }

    def close(self) -> None:
        """Stop the thread and close the socket; trains still queued are discarded and counted
        (``lost:queued at stop``)."""
        self._stop.set()
        with self._cond:
            if self._queue:
                self._dropped["lost:queued at stop"] += len(self._queue)
                self._queue.clear()
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- receiving thread ---------------------------------------------------------------------
    def _connect(self) -> zmq.Socket:
        sock = self._ctx.socket(CLIENT_SOCKETS[self.kind])
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, int(self.limits.max_frame_bytes))
        if self.curve is not None:
            self.curve.apply(sock)
        sock.set_hwm(self.hwm)
        if self.kind == "SUB":
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        self._watch = ConnectionWatch(sock, self.endpoint)
        sock.connect(self.endpoint)
        return sock

    def _close_socket(self, sock: zmq.Socket) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        sock.close(linger=0)

    def _run(self) -> None:
        sock = None
        pending_since: float | None = None
        try:
            while not self._stop.is_set():
                try:
                    if sock is None:
                        sock, pending_since = self._connect(), None
                    pending_since = self._step(sock, pending_since)
                except _Rebuild as why:
                    self._close_socket(sock)  # a REQ socket cannot re-ask; rebuild it
                    sock = None
                    self._counts["reconnects"] += 1
                    if str(why):
                        with self._cond:
                            self._dropped[str(why)] += 1
                    self._gaps.restart()  # a restarted source may start a new id sequence
                except Exception as e:  # any failure is counted; only `close` ends the thread
                    kind = type(e).__name__
                    with self._cond:
                        self._dropped[f"error:{kind}"] += 1
                    self._badlog.error(kind, "receiver %s: %s: %s", self.endpoint, kind, e)
                    if sock is not None and isinstance(e, zmq.ZMQError):
                        self._close_socket(sock)  # rebuilt on the next turn
                        sock = None
                    time.sleep(_POLL_MS / 1000)
        finally:
            if sock is not None:
                self._close_socket(sock)
            self._stop.set()
            with self._cond:
                self._cond.notify_all()

    def _step(self, sock: zmq.Socket, pending_since: float | None) -> float | None:
        """One turn of the receive loop; returns when the pending REQ request was sent."""
        if self.kind == "REQ" and pending_since is None:
            if self.policy == "block" and not self._wait_for_space():
                return None
            sock.send(b"next")
            pending_since = time.monotonic()
        now = time.monotonic()
        if now >= self._watch_at:
            self._watch_at = now + _POLL_MS / 1000
            if self._watch is not None and self._watch.check(now):
                log.warning("connection to %s dropped by ZeroMQ: reconnecting", self.endpoint)
                raise _Rebuild("lost:connection dropped (oversized or invalid frame)")
        if not sock.poll(_POLL_MS, zmq.POLLIN):
            if pending_since is not None and now - pending_since > self.request_timeout:
                raise _Rebuild("")
            return pending_since
        frames = sock.recv_multipart(copy=False)
        self._handle(frames)
        return None

    def _handle(self, frames: list[zmq.Frame]) -> None:
        nbytes = sum(len(f) for f in frames)
        now = time.monotonic()
        with self._cond:
            self._counts["received"] += 1
            self._counts["bytes"] += nbytes
            self._last_at = time.time()
            self._window.append((now, nbytes))
            self._trim_window(now)
        try:
            train = decode_train(frames, self.limits)
        except MalformedMessage as e:
            self._malformed(e.reason, str(e))
            return
        except Exception as e:  # a decoder bug must not end the run: counted by its type
            self._malformed(type(e).__name__, f"{type(e).__name__}: {e}")
            return
        train.received_at = now
        self._gaps.see(train.train_id)
        if self._watch is not None:
            self._watch.train(now)
        self._note_sources(train, now)
        self._enqueue(train)

    def _malformed(self, reason: str, detail: str) -> None:
        with self._cond:
            self._dropped[f"malformed:{reason}"] += 1
        self._badlog.warning(reason, "malformed message from %s: %s", self.endpoint, detail)

    def _enqueue(self, train: Train) -> None:
        with self._cond:
            if self._first_tid is None:
                self._first_tid = train.train_id
            self._last_tid = train.train_id
            if len(self._queue) >= self.maxlen:
                if self.policy == "drop_newest":
                    self._dropped["overload"] += 1
                    return
                if self.policy == "drop_oldest":
                    self._queue.popleft()
                    self._dropped["overload"] += 1
                else:
                    while len(self._queue) >= self.maxlen and not self._stop.is_set():
                        self._cond.wait(_POLL_MS / 1000)
                    if self._stop.is_set():
                        self._dropped["lost:queued at stop"] += 1
                        return
            self._queue.append(train)
            self._cond.notify_all()

    def _wait_for_space(self) -> bool:
        with self._cond:
            while len(self._queue) >= self.maxlen:
                if self._stop.is_set():
                    return False
                self._cond.wait(_POLL_MS / 1000)
        return not self._stop.is_set()

    def _note_sources(self, train: Train, now: float) -> None:
        if now - self._sources_at < 0.5 and self._sources:
            return
        self._sources_at = now
        seen = {}
        for src, values in train.data.items():
            seen[src] = {
                k: (f"{v.dtype}{list(v.shape)}" if hasattr(v, "shape") else type(v).__name__)
                for k, v in values.items()
            }
        with self._cond:
            self._sources.update(seen)

    def _trim_window(self, now: float) -> None:
        while len(self._window) > 2 and now - self._window[0][0] > _RATE_WINDOW_S:
            self._window.popleft()


def receiver_options(source: SourceConfig, path: str = "<string>") -> dict[str, Any]:
    """`Receiver` keywords of a ``[source]`` table: queue, policy, frame-size limit and CURVE
    keys (key files relative to the config file at ``path``)."""
    return {
        "queue": source.queue,
        "policy": source.policy,
        "limits": DecodeLimits(max_frame_bytes=source.max_frame_bytes),
        "curve": curve_client_for(source, path),
    }


def receiver_for(config: PipelineConfig, start: bool = True) -> Receiver:
    """The `Receiver` of a pipeline's ``[source]`` (see `receiver_options`)."""
    src = config.source
    return Receiver(src.endpoint, src.socket, start=start, **receiver_options(src, config.path))
