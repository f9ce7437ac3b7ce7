"""Scan positions from bluesky documents over ZeroMQ (msgpack only, never pickle).

`BlueskyPositions` runs bluesky's own `RemoteDispatcher` (SUB, connected to a
``bluesky-0MQ-proxy``) in a thread with a msgpack deserializer bounded in size. It keeps, per run,
the readings of the configured motors from the events (and event pages) of one descriptor stream
(``primary``), by sequence number. An image joins the event ``seq_num = image_id //
images_per_event + 1`` (seq_num counts from 1) of the run its series belongs to: the run named in
the series' start ``user_data`` (``{"uid": ...}`` written to the SIMPLON ``header_appendix``), else
the latest run that started. Documents may lag the images: a lookup waits up to ``wait`` s for the
event, then the image is counted as unmatched (``no_run``, ``no_event``, ``missing_motor``).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from .messages import Image, SeriesStart

__all__ = ["BlueskyPositions", "unpack_document"]

log = logging.getLogger(__name__)
_MAX_DOC_BYTES = 16 << 20
_MAX_RUNS = 16


def unpack_document(payload: bytes) -> Any:
    """msgpack-decode one document with explicit size limits (no extension types)."""
    if len(payload) > _MAX_DOC_BYTES:
        raise ValueError(f"document of {len(payload)} bytes")
    return msgpack.unpackb(
        payload, raw=False, strict_map_key=False,
        max_bin_len=_MAX_DOC_BYTES, max_str_len=1 << 20, max_array_len=1 << 20,
        max_map_len=1 << 16, max_ext_len=0,
    )  # fmt: skip


class _Run:
    def __init__(self, uid: str):
        self.uid = uid
        self.descriptors: set[str] = set()
        self.events: dict[int, dict[str, Any]] = {}
        self.stopped = False


class BlueskyPositions:
    """Motor positions of images from a live bluesky document stream (see the module doc).

    Parameters
    ----------
    endpoint
        The proxy's outbound address (``tcp://host:port``).
    motors
        Data keys of the motor readbacks in the events (e.g. ``["motor1", "motor2"]``).
    stream
        Descriptor name whose events carry the positions.
    images_per_event
        Detector images per event (``nimages`` per trigger in step scans).
    wait
        Seconds a lookup waits for a lagging event.
    """

    def __init__(
        self,
        endpoint: str,
        motors: Sequence[str],
        *,
        stream: str = "primary",
        images_per_event: int = 1,
        wait: float = 2.0,
    ):
        self.endpoint = endpoint
        self.motors = tuple(motors)
        self.stream = stream
        self.images_per_event = images_per_event
        self.wait = wait
        self._runs: collections.OrderedDict[str, _Run] = collections.OrderedDict()
        self._by_descriptor: dict[str, _Run] = {}
        self._series_run: dict[str, str] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._dispatcher: Any = None
        self.documents: collections.Counter[str] = collections.Counter()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect and receive documents in a background thread."""
        if self._thread is not None:
            return
        from bluesky.callbacks.zmq import RemoteDispatcher

        address = self.endpoint.removeprefix("tcp://")
        self._dispatcher = RemoteDispatcher(address, deserializer=unpack_document)
        self._dispatcher.subscribe(self)
        self._thread = threading.Thread(target=self._serve, name="bluesky documents", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import asyncio

        try:
            self._dispatcher.start()
        except asyncio.CancelledError:  # how `RemoteDispatcher.stop` ends it
            pass

    def close(self) -> None:
        if self._dispatcher is not None:
            deadline = time.monotonic() + 5
            while not self._dispatcher.loop.is_running() and time.monotonic() < deadline:
                if self._thread is None or not self._thread.is_alive():
                    break
                time.sleep(0.01)
            self._dispatcher.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- documents (dispatcher thread) ----------------------------------------------------------
    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        self.documents[name] += 1
        with self._cond:
            if name == "start":
                self._runs[doc["uid"]] = _Run(doc["uid"])
                while len(self._runs) > _MAX_RUNS:
                    self._runs.popitem(last=False)
            elif name == "descriptor" and doc.get("name") == self.stream:
                run = self._runs.get(doc.get("run_start"))
                if run is not None:
                    run.descriptors.add(doc["uid"])
                    self._by_descriptor[doc["uid"]] = run
            elif name == "event":
                self._event(doc.get("descriptor"), doc.get("seq_num"), doc.get("data", {}))
            elif name == "event_page":
                data = doc.get("data", {})
                for k, seq in enumerate(doc.get("seq_num", [])):
                    self._event(
                        doc.get("descriptor"), seq, {m: v[k] for m, v in data.items() if len(v) > k}
                    )
            elif name == "stop":
                run = self._runs.get(doc.get("run_start"))
                if run is not None:
                    run.stopped = True
            self._cond.notify_all()

    def _event(self, descriptor: Any, seq: Any, data: Mapping[str, Any]) -> None:
        run = self._by_descriptor.get(descriptor)
        if run is not None and isinstance(seq, int):
            run.events[seq] = dict(data)

    # -- lookups (assembler thread) -------------------------------------------------------------
    def _run_of(self, series: SeriesStart) -> _Run | None:
        uid = self._series_run.get(series.unique_id)
        if uid is None:
            ud = series.user_data
            named = ud.get("uid") if isinstance(ud, Mapping) else None
            if isinstance(named, str) and named in self._runs:
                uid = named
            elif self._runs:
                uid = next(reversed(self._runs))
            if uid is not None:
                self._series_run[series.unique_id] = uid
        return self._runs.get(uid) if uid is not None else None

    def lookup(
        self, series: SeriesStart, image: Image
    ) -> tuple[dict[str, float] | None, str | None]:
        seq = image.image_id // self.images_per_event + 1
        deadline = time.monotonic() + self.wait
        with self._cond:
            while True:
                run = self._run_of(series)
                event = run.events.get(seq) if run is not None else None
                left = deadline - time.monotonic()
                if event is not None or left <= 0 or (run is not None and run.stopped):
                    break
                self._cond.wait(min(left, 0.1))
        if run is None:
            return None, "no_run"
        if event is None:
            return None, "no_event"
        try:
            return {m: float(event[m]) for m in self.motors}, None
        except (KeyError, TypeError, ValueError):
            return None, "missing_motor"
