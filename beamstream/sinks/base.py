"""`Sink`: a consumer of hub snapshots running in its own thread."""

from __future__ import annotations

import logging
import threading
from typing import Any

from beamstream.sinks.hub import Hub, Snapshot
from beamstream.streamer.ratelog import RateLimitedLog

__all__ = ["Sink"]

log = logging.getLogger(__name__)


class Sink:
    """Reads snapshots from a `Hub` in a thread and hands each to `write`.

    Subclasses implement `write(snapshot)` and may implement `open()` / `close()`. A slow sink
    only skips intermediate snapshots (it always gets the latest one, and the final one); it never
    slows processing. An exception in `write` is counted and logged (the first of each kind with
    its traceback, then a line per kind at most every 30 s with the count) and the sink goes on.
    """

    name = "sink"

    def __init__(self, **params: Any):
        self.params = params
        self.errors = 0
        self.written = 0
        self._thread: threading.Thread | None = None
        self._hub: Hub | None = None
        self._errlog = RateLimitedLog(log, interval=30.0)
        self._error_kinds: set[str] = set()

    def open(self, hub: Hub) -> None:
        """Called once before the first snapshot (in the caller's thread)."""

    def write(self, snapshot: Snapshot) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Called once after the last snapshot (in the sink's thread)."""

    def start(self, hub: Hub) -> None:
        self._hub = hub
        self.open(hub)
        self._thread = threading.Thread(target=self._loop, name=f"sink {self.name}", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        hub = self._hub
        seq = 0
        try:
            while True:
                snap = hub.wait_snapshot(seq, timeout=0.5)
                if snap is None:
                    if hub.closed:
                        last = hub.latest()
                        if last is not None and last.seq > seq:
                            self._write(last)
                        break
                    continue
                seq = snap.seq
                self._write(snap)
                if snap.final:
                    break
        finally:
            try:
                self.close()
            except Exception:
                log.exception("sink %s failed to close", self.name)

    def _write(self, snap: Snapshot) -> None:
        try:
            self.write(snap)
            self.written += 1
        except Exception as e:
            self.errors += 1
            kind = type(e).__name__
            if kind not in self._error_kinds:
                self._error_kinds.add(kind)
                log.exception("sink %s failed to write snapshot %d", self.name, snap.seq)
                self._errlog.note(kind)  # later ones: a counted line per interval
            else:
                self._errlog.error(
                    kind,
                    "sink %s failed to write snapshot %d: %s: %s",
                    self.name,
                    snap.seq,
                    kind,
                    e,
                )

    def health(self) -> dict[str, Any]:
        """Problems the user must hear of at the end of the run (empty: none)."""
        return {"errors": self.errors} if self.errors else {}
