"""`DectrisSource`: PULL a DECTRIS detector stream (V2 CBOR or legacy v1) into `Train` s.

Three stages, so that decompression overlaps with receiving:

1. the receive thread PULLs, parses each message (`decode_cbor` + `parse_v2`, or `parse_v1`),
   checks it against the open series (`SeriesTracker`) and groups the good images (still
   compressed);
2. the assembler thread takes closed groups in stream order, has the next few decompressed
   ahead in the pool, builds trains (`build_train`) and queues them with the series events
   between them (`dectris.compression` releases the GIL, so the pool's threads decompress in
   parallel while the receive thread goes on);
3. the consumer calls `get` (like `beamstream.streamer.receiver.Receiver`); a series start seen
   there is recorded (`series_starts`, `wait_series`) and, with ``series_epoch``, asks the runner
   for a new epoch (`events`).

Every message that cannot be used is counted in ``stats()["dropped"]`` by reason.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue as _queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import zmq

from beamstream.sources import Source
from beamstream.streamer.ratelog import RateLimitedLog
from beamstream.streamer.train import Train

from .assemble import build_train, consistent_images, decode_image
from .cbor import decode_cbor
from .codec import CodecError
from .fanout import RELAY_MAGIC, fetch_start
from .legacy import parse_v1
from .limits import DEFAULT_LIMITS, DectrisLimits, MalformedMessage
from .messages import Image, SeriesStart, parse_v2
from .positions import PositionLookup
from .series import Group, SeriesEvent, SeriesTracker

__all__ = ["DectrisSource", "STREAMS", "POLICIES"]

log = logging.getLogger(__name__)

STREAMS = ("v2", "v1")
POLICIES = ("block", "drop_oldest", "drop_newest")
_POLL_S = 0.1


class DectrisSource(Source):
    """Receive a DECTRIS stream in background threads; `get` returns decoded `Train` s.

    Parameters
    ----------
    endpoint
        The detector's PUSH endpoint (V2: port 31001, v1: 9999), or a relay's.
    stream
        ``"v2"`` (CBOR) or ``"v1"`` (legacy JSON multipart).
    name
        Source name of the detector data in the trains (``source.detector``).
    frames_per_train
        Consecutive images of a series grouped into one train.
    threads
        Decompression threads.
    queue, policy
        Bound of the queue of trains and what happens when it is full (as for `Receiver`).
    limits
        Size limits (`DectrisLimits`).
    positions, positions_source
        Where scan positions come from (`beamstream.dectris.positions`) and the source name
        they get in the trains.
    series_epoch
        Ask for a new epoch at every new series (after the first).
    flush_timeout
        Seconds without a message after which an incomplete train is sent.
    timeout
        Seconds without a train after which iteration ends (None: never).
    record
        Path prefix: record every series as received to NXmx files (`StreamRecorder`).
    """

    type_name = "dectris"

    def __init__(
        self,
        endpoint: str,
        *,
        stream: str = "v2",
        name: str = "eiger",
        frames_per_train: int = 1,
        threads: int = 2,
        queue: int = 8,
        policy: str = "block",
        limits: DectrisLimits = DEFAULT_LIMITS,
        positions: PositionLookup | None = None,
        positions_source: str = "positions",
        series_epoch: bool = False,
        flush_timeout: float = 1.0,
        timeout: float | None = None,
        record: str | None = None,
        hwm: int = 1000,
        context: zmq.Context | None = None,
        start: bool = True,
    ):
        if stream not in STREAMS:
            raise ValueError(f"stream {stream!r}: expected one of {', '.join(STREAMS)}")
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.endpoint = endpoint
        self.stream = stream
        self.name = name
        self.limits = limits
        self.positions = positions
        self.positions_source = positions_source
        self.series_epoch = series_epoch
        self.flush_timeout = flush_timeout
        self.timeout = timeout
        self.maxlen = queue
        self.policy = policy
        self.hwm = hwm
        self.tracker = SeriesTracker(frames_per_train)
        self.recorder = None
        if record is not None:
            from .recorder import StreamRecorder

            self.recorder = StreamRecorder(record)
        self.series_starts: list[SeriesStart] = []
        self._ctx = context or zmq.Context.instance()
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, "dectris-decompress")
        self._pipe: _queue.Queue[Any] = _queue.Queue(maxsize=queue + 2 * threads)
        #: closed groups whose images are being decompressed ahead of the assembler
        self._ahead = max(2, 2 * threads // frames_per_train)
        self._out: collections.deque[Train | SeriesEvent] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done_receiving = threading.Event()
        self._counts: collections.Counter[str] = collections.Counter()
        self._dropped: collections.Counter[str] = collections.Counter()
        self._events: list[str] = []
        self._last_tid: int | None = None
        self._started = time.monotonic()
        self._badlog = RateLimitedLog(log, interval=5.0)
        self._threads = [
            threading.Thread(target=self._receive, name=f"dectris rx {endpoint}", daemon=True),
            threading.Thread(target=self._assemble, name=f"dectris asm {endpoint}", daemon=True),
        ]
        if start:
            self.start()

    @classmethod
    def check(cls, config: Any, path: str = "<string>") -> None:
        """Raise `ConfigError` naming ``source.<key>`` for bad options (nothing is connected)."""
        from .options import source_kwargs

        source_kwargs(config, path)

    @classmethod
    def from_config(cls, config: Any, path: str = "<string>") -> DectrisSource:
        """A connected source from a ``[source] type = "dectris"`` table."""
        from .options import source_kwargs

        return cls(config.endpoint, **source_kwargs(config, path))

    # -- consumer side --------------------------------------------------------------------------
    def start(self) -> None:
        if self.positions is not None and hasattr(self.positions, "start"):
            self.positions.start()
        for t in self._threads:
            if not t.is_alive():
                t.start()

    def get(self, timeout: float | None = None) -> Train | None:
        """The next train, or None after ``timeout`` seconds or once the source is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                while self._out and isinstance(self._out[0], SeriesEvent):
                    self._on_event(self._out.popleft())
                if self._out:
                    train = self._out.popleft()
                    self._counts["delivered"] += 1
                    self._cond.notify_all()
                    return train  # type: ignore[return-value]
                if self._stop.is_set():
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(_POLL_S if left is None else min(left, _POLL_S))

    def wait_series(self, timeout: float | None = None) -> SeriesStart | None:
        """Block until a series start has been received (None after ``timeout`` s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._first_start is None:
                if self._stop.is_set():
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(_POLL_S)
            return self._first_start

    def events(self) -> list[str]:
        """Events for the runner since the last call (``"new_epoch"``)."""
        with self._cond:
            out, self._events = self._events, []
        return out

    def __iter__(self) -> Iterator[Train]:
        while True:
            train = self.get(self.timeout)
            if train is None:
                return
            yield train

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Stop the threads and close the socket; queued trains are discarded."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            if t.is_alive() and threading.current_thread() is not t:
                t.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.positions is not None and hasattr(self.positions, "close"):
            self.positions.close()
        if self.recorder is not None:
            self.recorder.close()

    def __enter__(self) -> DectrisSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """Counters: received messages, images, trains, bytes, dropped by reason, series."""
        now = time.monotonic()
        with self._cond:
            dropped = dict(self._dropped)
            for reason, n in self.tracker.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + n
            if self.recorder is not None:
                dropped.update(self.recorder.lost)
            up = max(now - self._started, 1e-9)
            return {
                "endpoint": self.endpoint,
                "socket": "PULL",
                "stream": self.stream,
                "received": self._counts["received"],
                "images": self._counts["images"],
                "trains": self._counts["trains"],
                "delivered": self._counts["delivered"],
                "dropped": dropped,
                "dropped_total": sum(dropped.values()),
                "bytes": self._counts["bytes"],
                "compressed_bytes": self._counts["compressed_bytes"],
                "series": self.tracker.series_seen,
                "queued": sum(isinstance(x, Train) for x in self._out),
                "trains_per_s": self._counts["trains"] / up,
                "MB_per_s": self._counts["bytes"] / up / 1e6,
                "last_train_id": self._last_tid,
                "uptime_s": now - self._started,
                "sources": {self.name: {}},
                "recorded_images": self.recorder.images if self.recorder is not None else 0,
            }

    # -- receive thread -------------------------------------------------------------------------
    _first_start: SeriesStart | None = None

    def _drop(self, reason: str, detail: str = "") -> None:
        with self._cond:
            self._dropped[reason] += 1
        self._badlog.warning(reason, "dectris stream %s: %s %s", self.endpoint, reason, detail)

    def _parse(self, frames: list[zmq.Frame]) -> Any:
        if self.stream == "v2":
            if len(frames) != 1:
                raise MalformedMessage("multipart", f"{len(frames)} parts; V2 sends one")
            return parse_v2(decode_cbor(frames[0].buffer, self.limits), self.limits)
        return parse_v1([f.bytes for f in frames], self.limits)

    def _receive(self) -> None:
        sock = self._ctx.socket(zmq.PULL)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes)
        sock.set_hwm(self.hwm)
        sock.connect(self.endpoint)
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                if not sock.poll(int(_POLL_S * 1000), zmq.POLLIN):
                    if time.monotonic() - last > self.flush_timeout:
                        self._forward(self.tracker.flush())
                    continue
                frames = sock.recv_multipart(copy=False)
                last = time.monotonic()
                try:
                    self._handle(frames)
                except Exception as e:  # a bug must not stop the stream: counted, logged
                    self._drop(f"internal:{type(e).__name__}", str(e))
                    log.exception("dectris message from %s not handled", self.endpoint)
        except Exception:  # never expected; keep the cause visible
            log.exception("dectris receive thread for %s stopped", self.endpoint)
            self._stop.set()
        finally:
            sock.close(linger=0)
            self._done_receiving.set()

    def _handle(self, frames: list[zmq.Frame]) -> None:
        with self._cond:
            self._counts["received"] += 1
            self._counts["bytes"] += sum(len(f) for f in frames)
        if len(frames) > 4 and frames[0].bytes == RELAY_MAGIC:
            head = [f.bytes for f in frames[:4]]
            try:
                base = int(head[3])
                info = head[2].decode()
            except (ValueError, UnicodeDecodeError):
                self._drop("malformed:relay_header", repr(head[1:4])[:80])
                return
            if not self._relayed_series(head[1], info, base):
                return
            frames = frames[4:]
        try:
            msg = self._parse(frames)
        except MalformedMessage as e:
            self._drop(f"malformed:{e.reason}", e.detail)
            return
        payload = None
        if isinstance(msg, Image):
            reason = self.tracker.check_image(msg)
            if reason is None:
                if self.recorder is not None:
                    self.recorder.put(msg)
                payload = msg  # decompressed by the assembler's lookahead
                with self._cond:
                    self._counts["images"] += 1
                    self._counts["compressed_bytes"] += msg.wire_bytes
        elif self.recorder is not None:
            self.recorder.put(msg)
        if isinstance(msg, SeriesStart):
            self._note_start(msg, [f.bytes for f in frames])
        self._forward(self.tracker.feed(msg, payload))

    def _note_start(self, msg: SeriesStart, raw: list[bytes]) -> None:
        msg.raw = raw if self.stream == "v1" else raw[0]
        with self._cond:
            if self._first_start is None:
                self._first_start = msg
            self._cond.notify_all()

    def _relayed_series(self, uid: bytes, info: str, base: int) -> bool:
        """A relayed image: make its series the open one (start fetched from the relay once)."""
        open_ = self.tracker.series
        if open_ is not None and open_.unique_id.encode() == uid:
            return True
        raw = fetch_start(info, uid)
        if raw is None:
            self._drop("relay_no_start", uid.decode(errors="replace"))
            return False
        try:
            start = (
                parse_v2(decode_cbor(raw[0], self.limits), self.limits)
                if (self.stream == "v2")
                else parse_v1(raw, self.limits)
            )
        except MalformedMessage as e:
            self._drop(f"malformed:{e.reason}", "relayed start")
            return False
        if not isinstance(start, SeriesStart):
            self._drop("relay_no_start", "not a start message")
            return False
        self._note_start(start, raw)
        self._forward(self.tracker.switch(start, base))
        return True

    def _forward(self, items: list[Any]) -> None:
        for item in items:
            while not self._stop.is_set():
                try:
                    self._pipe.put(item, timeout=_POLL_S)
                    break
                except _queue.Full:
                    continue

    # -- assembler thread -----------------------------------------------------------------------
    def _assemble(self) -> None:
        """Take closed groups in order; decompression runs ahead for the next few only, so that
        few decoded frames (tens of MB each for a 4M) are alive at once."""
        window: collections.deque[Any] = collections.deque()
        while not self._stop.is_set():
            while len(window) < self._ahead:
                try:
                    item = (
                        self._pipe.get(timeout=_POLL_S) if not window else self._pipe.get_nowait()
                    )
                except _queue.Empty:
                    break
                if isinstance(item, Group):
                    item.images = [(i, self._pool.submit(decode_image, i)) for i, _ in item.images]
                window.append(item)
            if not window:
                if self._done_receiving.is_set() and self._pipe.empty():
                    return
                continue
            item = window.popleft()
            if not isinstance(item, Group):
                self._enqueue(item)
                continue
            try:
                train = self._train(item)
            except Exception as e:  # a bug must not stop the stream: counted, logged
                self._drop(f"internal:{type(e).__name__}", str(e))
                log.exception("dectris train %s not assembled", item.train_id)
                continue
            if train is not None:
                self._enqueue(train)

    def _train(self, group: Group) -> Train | None:
        decoded = []
        for image, future in group.images:
            try:
                decoded.append((image, future.result()))
            except CodecError as e:
                self._drop(f"malformed:{e.reason}", f"image {image.image_id}: {e}")
            except concurrent.futures.CancelledError:
                return None
        decoded = consistent_images(decoded, self._drop)
        train = build_train(
            group,
            decoded,
            name=self.name,
            positions=self.positions,
            positions_source=self.positions_source,
            unmatched=lambda reason: self._drop(f"positions:{reason}"),
        )
        if train is not None:
            train.nbytes = sum(i.wire_bytes for i, _ in decoded)
            train.received_at = time.monotonic()
        return train

    def _enqueue(self, item: Train | SeriesEvent) -> None:
        with self._cond:
            if isinstance(item, Train):
                self._counts["trains"] += 1
                self._last_tid = item.train_id
                if not self._make_room():
                    return
            self._out.append(item)
            self._cond.notify_all()

    def _make_room(self) -> bool:
        """Apply the queue policy (lock held); False when the new train is dropped."""
        while sum(isinstance(x, Train) for x in self._out) >= self.maxlen:
            if self.policy == "drop_newest":
                self._dropped["overload"] += 1
                return False
            if self.policy == "drop_oldest":
                for k, x in enumerate(self._out):
                    if isinstance(x, Train):
                        del self._out[k]
                        break
                self._dropped["overload"] += 1
                continue
            if self._stop.is_set():
                return False
            self._cond.wait(_POLL_S)
        return True

    def _on_event(self, event: SeriesEvent) -> None:
        """A series event reached the consumer (lock held)."""
        if event.kind == "start":
            self.series_starts.append(event.series)
            if self.series_epoch and len(self.series_starts) > 1:
                self._events.append("new_epoch")
        log.info(
            "dectris series %s %s (%s)",
            event.series.series_id,
            event.kind,
            "complete" if event.complete else "no end received",
        )
