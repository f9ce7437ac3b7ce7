"""`ConnectionWatch`: what happens to a receiver's connection, logged and acted upon.

ZeroMQ reconnects by itself after a source goes away, but it gives up for good after a protocol
error, which is what a frame over the maximum message size is: the connection is dropped and
never retried, and the receiver would wait forever. The watch reads the socket's monitor events:
a disconnection not followed by a reconnection attempt within ``give_up_s`` asks the receiver
to rebuild its socket. It also logs when the source went away and came back, and when trains
stopped and started again.
"""

from __future__ import annotations

import logging

import zmq
from zmq.utils.monitor import recv_monitor_message

__all__ = ["ConnectionWatch"]

log = logging.getLogger(__name__)

_EVENTS = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_CONNECT_DELAYED
    | zmq.EVENT_CONNECT_RETRIED
    | zmq.EVENT_DISCONNECTED
)
_RECONNECTING = (zmq.EVENT_CONNECTED, zmq.EVENT_CONNECT_DELAYED, zmq.EVENT_CONNECT_RETRIED)


class ConnectionWatch:
    """Watch one connecting socket (see the module doc).

    Parameters
    ----------
    sock
        The socket (before it connects).
    endpoint
        For the log lines.
    give_up_s
        Seconds after a disconnection without a reconnection attempt before `check` says the
        socket must be rebuilt.
    silence_s
        Seconds without a train before "no train" is logged (once, until trains come back).
    """

    def __init__(
        self, sock: zmq.Socket, endpoint: str, give_up_s: float = 1.0, silence_s: float = 10.0
    ):
        self.endpoint = endpoint
        self.give_up_s = give_up_s
        self.silence_s = silence_s
        self._sock = sock
        self._mon = sock.get_monitor_socket(_EVENTS)
        self._lost_at: float | None = None
        self._connected = False
        self._last_train: float | None = None
        self._silent_since: float | None = None

    def check(self, now: float) -> bool:
        """Read pending events; True when the connection was dropped for good (rebuild)."""
        while self._mon.poll(0):
            event = recv_monitor_message(self._mon)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                if self._connected:
                    log.warning("source %s went away (connection lost)", self.endpoint)
                self._connected = False
                self._lost_at = now
            elif event in _RECONNECTING:
                self._lost_at = None
                if event == zmq.EVENT_CONNECTED:
                    if not self._connected:
                        log.info("connected to source %s", self.endpoint)
                    self._connected = True
        if self._last_train is not None and self._silent_since is None:
            if now - self._last_train > self.silence_s:
                self._silent_since = self._last_train
                log.warning("no train from %s for %.0f s", self.endpoint, now - self._last_train)
        return self._lost_at is not None and now - self._lost_at > self.give_up_s

    def train(self, now: float) -> None:
        """A train arrived."""
        if self._silent_since is not None:
            log.warning(
                "trains from %s again after %.1f s", self.endpoint, now - self._silent_since
            )
            self._silent_since = None
        self._last_train = now

    def close(self) -> None:
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self._mon.close(linger=0)
