"""`Sender`: the server side of the Karabo Bridge protocol (REP, PUB or PUSH)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import zmq

from beamstream.streamer.curve import CurveServer
from beamstream.streamer.protocol import encode_train
from beamstream.streamer.ratelog import RateLimitedLog
from beamstream.streamer.train import Train

__all__ = ["Sender", "SOCKET_TYPES", "normalize_endpoint"]

log = logging.getLogger(__name__)

SOCKET_TYPES = {"REP": zmq.REP, "PUB": zmq.PUB, "PUSH": zmq.PUSH}
_POLL_MS = 100
#: largest request a REP sender accepts (``next`` is 4 bytes), and how much of a bad one it echoes
_MAX_REQUEST_BYTES = 4096
_ECHO_BYTES = 64
#: messages still read by ZeroMQ when their sender closed: kept alive until the process ends
_IN_FLIGHT: list[Any] = []


def normalize_endpoint(endpoint: str, port: int = 4545) -> str:
    """Accept ``HOST:PORT``, ``PORT`` or a full ZeroMQ endpoint; default host 127.0.0.1."""
    if "://" in endpoint:
        return endpoint
    if endpoint.isdigit():
        return f"tcp://127.0.0.1:{endpoint}"
    if ":" in endpoint:
        return f"tcp://{endpoint}"
    return f"tcp://{endpoint}:{port}"


class Sender:
    """Bind a REP, PUB or PUSH socket and send trains in the Karabo Bridge protocol (2.2).

    REP answers each ``next`` request with one train and anything else with
    ``Error: bad request <first 64 bytes of the request>`` (counted in ``bad_requests``, logged
    rate-limited; requests over 4 KiB are refused by ZeroMQ); PUSH blocks while no puller is
    ready; PUB drops for slow subscribers (as the protocol does). Binds to 127.0.0.1 unless
    the endpoint says otherwise.

    Parameters
    ----------
    endpoint
        ``tcp://127.0.0.1:4545``, ``tcp://127.0.0.1:0`` (any free port, see `endpoint`),
        ``ipc:///path``, or the short forms ``4545`` / ``host:4545``.
    socket
        ``"REP"`` (default), ``"PUB"`` or ``"PUSH"``.
    protocol
        Wire protocol written (``"2.2"``).
    hwm
        Send high-water mark (1, like the reference implementation).
    curve
        CURVE keys (`beamstream.streamer.curve.CurveServer`): encrypted links, and with its
        ``authorized`` directory only those clients admitted; None (default): plain ZeroMQ.
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:4545",
        socket: str = "REP",
        protocol: str = "2.2",
        hwm: int = 1,
        context: zmq.Context | None = None,
        curve: CurveServer | None = None,
    ):
        kind = socket.upper()
        if kind not in SOCKET_TYPES:
            raise ValueError(f"socket {socket!r}: expected one of {', '.join(SOCKET_TYPES)}")
        self.kind = kind
        self.protocol = protocol
        self.sent = 0
        self.bad_requests = 0
        self._inflight: list[zmq.Frame] = []
        self._badlog = RateLimitedLog(log, interval=10.0)
        # with CURVE authentication, a context of its own (its authenticator serves it alone)
        self._own_ctx = curve is not None and curve.authorized is not None and context is None
        self._ctx = zmq.Context() if self._own_ctx else (context or zmq.Context.instance())
        self._sock = self._ctx.socket(SOCKET_TYPES[kind])
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.set_hwm(hwm)
        if kind == "REP":  # requests are a few bytes: larger ones are refused by ZeroMQ
            self._sock.setsockopt(zmq.MAXMSGSIZE, _MAX_REQUEST_BYTES)
        self._auth = curve.apply(self._sock) if curve is not None else None
        if self._auth is not None:  # with ZAP, a receive high-water mark of 1 stalls REP
            self._sock.setsockopt(zmq.RCVHWM, max(hwm, 2))
        addr = normalize_endpoint(endpoint)
        try:
            if addr.startswith("tcp://") and addr.endswith(":0"):
                port = self._sock.bind_to_random_port(addr[:-2])
                addr = f"{addr[:-2]}:{port}"
            else:
                self._sock.bind(addr)
        except zmq.ZMQError as e:
            self.close()
            raise OSError(f"cannot bind {kind} socket to {addr}: {e}") from None
        self.endpoint = addr

    def send(self, train: Train, timeout: float | None = None) -> bool:
        """Send one train; False when it could not go out within ``timeout`` seconds."""
        return self.send_frames(encode_train(train, self.protocol), timeout)

    def send_frames(self, frames: Sequence[Any], timeout: float | None = None) -> bool:
        """Send one pre-encoded message; False on timeout (REP: no request came)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.kind == "REP" and not self._await_next(deadline):
            return False
        if self.kind != "PUB":
            while not self._sock.poll(self._poll_ms(deadline), zmq.POLLOUT):
                if deadline is not None and time.monotonic() >= deadline:
                    return False
        # zero-copy: ZeroMQ sends large parts from the arrays' memory (smaller ones are copied);
        # their trackers tell when it is done with them
        parts = [
            zmq.Frame(f, copy=False, track=True) if len(f) >= zmq.COPY_THRESHOLD else f
            for f in frames
        ]
        self._sock.send_multipart(parts, copy=False)
        self._inflight = [p for p in parts if isinstance(p, zmq.Frame)]
        self.sent += 1
        return True

    def _await_next(self, deadline: float | None) -> bool:
        while True:
            if not self._sock.poll(self._poll_ms(deadline), zmq.POLLIN):
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                continue
            request = self._sock.recv()
            if request == b"next":
                return True
            self.bad_requests += 1
            self._badlog.warning(
                "bad request", "bad request on %s: %r", self.endpoint, request[:_ECHO_BYTES]
            )
            # the reference server echoes the request; only its start here (never megabytes)
            more = b"..." if len(request) > _ECHO_BYTES else b""
            self._sock.send(b"Error: bad request " + request[:_ECHO_BYTES] + more)

    def _release(self, patience: float) -> None:
        """Wait (up to ``patience`` s) until ZeroMQ no longer reads the last message's memory.

        Messages are sent zero-copy; freeing their arrays (e.g. at interpreter exit) while
        ZeroMQ's I/O thread still writes them aborted the process (``Bad address``).
        """
        frames, self._inflight = self._inflight, []
        deadline = time.monotonic() + max(patience, 0.0) + 0.5
        for frame in frames:
            try:
                frame.tracker.wait(max(0.0, deadline - time.monotonic()))
            except zmq.NotDone:
                _IN_FLIGHT.append(frames)  # never freed: ZeroMQ may still read them
                log.warning("%s: the last message had not left when closing", self.endpoint)
                return

    @staticmethod
    def _poll_ms(deadline: float | None) -> int:
        if deadline is None:
            return _POLL_MS
        return max(0, min(_POLL_MS, int((deadline - time.monotonic()) * 1000)))

    def close(self) -> None:
        """Close the socket (pending messages are dropped)."""
        self._close(linger=0)

    def flush_and_close(self, timeout: float = 2.0) -> None:
        """Close after giving queued messages up to ``timeout`` seconds to leave (PUSH/PUB)."""
        self._close(linger=int(timeout * 1000))

    def _close(self, linger: int) -> None:
        self._sock.close(linger=linger)
        self._release(linger / 1000)
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._own_ctx:
            self._ctx.term()
            self._own_ctx = False

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
