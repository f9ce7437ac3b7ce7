"""Probe a ZeroMQ endpoint: is anything listening, and which client socket does it accept?

A connecting socket's monitor tells the cases apart without exchanging data: a handshake that
succeeds means the server's pattern matches the client's; a connection dropped right after it was
made means a server of another pattern (ZeroMQ refuses mismatched socket types); no connection at
all means nothing listens.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import zmq
from zmq.utils.monitor import recv_monitor_message

from beamstream.streamer.sender import normalize_endpoint

__all__ = ["ProbeResult", "probe_endpoint", "SERVER_OF"]

#: the server socket each client socket pairs with
SERVER_OF = {"REQ": "REP", "SUB": "PUB", "PULL": "PUSH"}
_CLIENTS = {"REQ": zmq.REQ, "SUB": zmq.SUB, "PULL": zmq.PULL}


@dataclass(frozen=True)
class ProbeResult:
    """What a probe found at an endpoint.

    Attributes
    ----------
    listening
        Something accepted a connection.
    accepts
        The client socket types whose handshake succeeded (e.g. ``("REQ",)`` for a REP source).
    """

    listening: bool
    accepts: tuple[str, ...]


def probe_endpoint(endpoint: str, timeout: float = 0.5) -> ProbeResult:
    """Try each client socket type against ``endpoint`` (at most ``timeout`` s each).

    No message is requested or read: a REQ probe never sends ``next``; a PULL probe closes as soon
    as its handshake is done (a PUSH source may have queued one train to it, which is lost).
    """
    endpoint = normalize_endpoint(endpoint)
    if endpoint.startswith("ipc://") and not os.path.exists(endpoint[len("ipc://") :]):
        return ProbeResult(False, ())
    ctx = zmq.Context.instance()
    listening, accepts = False, []
    for name, kind in _CLIENTS.items():
        connected, ok = _handshake(ctx, endpoint, kind, timeout)
        listening |= connected
        if ok:
            accepts.append(name)
        if not connected:
            break  # nothing there: no need to try the other patterns
    return ProbeResult(listening, tuple(accepts))


def _handshake(ctx: zmq.Context, endpoint: str, kind: int, timeout: float) -> tuple[bool, bool]:
    """(connected, handshake succeeded) for one client socket type."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.set_hwm(1)
    monitor = sock.get_monitor_socket()
    connected = False
    try:
        sock.connect(endpoint)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not monitor.poll(int(left * 1000) + 1):
                break
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_CONNECTED:
                connected = True
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return True, True
            elif connected and event in (zmq.EVENT_DISCONNECTED, _HANDSHAKE_FAILED):
                return True, False
        return connected, False
    finally:
        sock.disable_monitor()
        monitor.close(linger=0)
        sock.close(linger=0)


_HANDSHAKE_FAILED = getattr(zmq, "EVENT_HANDSHAKE_FAILED_PROTOCOL", -1)
