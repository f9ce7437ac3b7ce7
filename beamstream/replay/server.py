"""`replay`: stream a reader's trains over the Karabo Bridge protocol, paced, looped, with progress.

Pacing: ``"recorded"`` keeps the recorded spacing of the trains (their timestamps, or their train
ids at 10 Hz when there are none; gaps longer than ``max_gap`` s are shortened to it), ``"max"``
sends as fast as the client takes them, a number sends at that many trains per second. REP waits
for each client request, PUSH blocks while no puller is ready, PUB drops for slow subscribers.
``loop`` repeats the data with train ids continuing upwards, so a client never sees an id twice.
Reading and encoding run one train ahead of sending, in a thread.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TextIO

from beamstream.replay.base import Reader
from beamstream.streamer.curve import CurveServer
from beamstream.streamer.protocol import encode_train
from beamstream.streamer.sender import Sender
from beamstream.streamer.train import Train

__all__ = ["replay", "Progress", "parse_rate", "looped"]

TRAIN_PERIOD = 0.1
_SEND_POLL = 0.2


def parse_rate(text: str | float | None) -> float | str:
    """``recorded``, ``max`` or a positive number of trains per second (``10``, ``10Hz``)."""
    if text is None or text == "recorded":
        return "recorded"
    if text in ("max", 0, "0"):
        return "max"
    try:
        hz = float(str(text).lower().removesuffix("hz"))
    except ValueError:
        raise ValueError(f"rate {text!r}: expected recorded, max or trains per second") from None
    if hz <= 0:
        raise ValueError(f"rate {text!r}: expected a positive number of trains per second")
    return hz


def looped(reader: Reader, loops: int | None, dummy_timestamps: bool = False) -> Iterator[Train]:
    """The reader's trains ``loops`` times (None or 0: forever), ids increasing across loops."""
    ids = reader.train_ids
    span = int(ids.max() - ids.min() + 1) if len(ids) else 0
    k = 0
    while not loops or k < loops:
        n = 0
        for train in reader:
            n += 1
            if k:
                train = _shift(train, k * span)
            if dummy_timestamps:
                train = _stamp(train, None)
            yield train
        if n == 0:
            return
        k += 1


def _shift(train: Train, offset: int) -> Train:
    tid = train.train_id + offset
    ts = None if train.timestamp is None else train.timestamp + offset * TRAIN_PERIOD
    meta = {}
    for src, m in train.meta.items():
        m = dict(m, **{"timestamp.tid": tid})
        if ts is not None and "timestamp" in m:
            m.pop("timestamp"), m.pop("timestamp.sec", None), m.pop("timestamp.frac", None)
        meta[src] = m
    return replace(train, train_id=tid, timestamp=ts, meta=meta)


def _stamp(train: Train, now: float | None) -> Train:
    meta = {}
    for src, m in train.meta.items():
        meta[src] = {
            k: v for k, v in m.items() if not k.startswith("timestamp") or k == "timestamp.tid"
        }
    return replace(train, timestamp=time.time() if now is None else now, meta=meta)


@dataclass
class Progress:
    """Prints a progress bar (trains sent/total, rate, MB/s, ETA) to ``out``."""

    total: int | None
    out: TextIO | None = sys.stderr
    interval: float = 0.25
    _last: float = 0.0

    def update(self, s: dict[str, Any], final: bool = False) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        tty = getattr(self.out, "isatty", lambda: False)()
        if not final and now - self._last < (self.interval if tty else 5.0):
            return
        self._last = now
        sent, rate = s["sent"], s["rate"]
        if self.total:
            frac = min(1.0, sent / self.total)
            bar = "=" * int(frac * 24) + ">" + " " * (24 - int(frac * 24))
            left = (self.total - sent) / rate if rate > 0 else float("nan")
            eta = f"ETA {_hms(left)}" if left == left else "ETA ?"
            head = f"[{bar[:25]}] {sent}/{self.total} trains"
        else:
            head, eta = f"{sent} trains", ""
        line = f"{head} {rate:7.1f} trains/s {s['MBps']:8.1f} MB/s {eta}"
        if s.get("skipped"):
            line += f" skipped {s['skipped']}"
        self.out.write(("\r" + line) if tty else line + "\n")
        if final and tty:
            self.out.write("\n")
        self.out.flush()


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def replay(
    reader: Reader,
    endpoint: str = "tcp://127.0.0.1:4545",
    socket: str = "REP",
    rate: str | float = "recorded",
    loops: int | None = 1,
    dummy_timestamps: bool = False,
    progress: TextIO | None = sys.stderr,
    stop_event: threading.Event | None = None,
    ready: Callable[[str], None] | None = None,
    max_gap: float = 1.0,
    linger: float = 1.0,
    curve: CurveServer | None = None,
) -> dict[str, Any]:
    """Send the reader's trains with a `Sender`; returns a summary dict.

    ``linger``: seconds the socket stays open after the last train, so that trains still in
    flight (in the kernel's buffers, which ZeroMQ drops when the connection closes) reach the
    client.

    Returns
    -------
    dict
        ``endpoint``, ``socket``, ``sent``, ``total`` (None when looping forever), ``bytes``,
        ``elapsed`` [s], ``rate`` [trains/s], ``MBps``, ``skipped`` (unreadable trains),
        ``first_train_id``, ``last_train_id``, ``interrupted``.
    """
    pace = parse_rate(rate) if not isinstance(rate, float | int) else float(rate)
    stop = stop_event or threading.Event()
    total = len(reader) * loops if loops else None
    bar = Progress(total, progress)
    s: dict[str, Any] = {
        "endpoint": endpoint,
        "socket": socket.upper(),
        "sent": 0,
        "total": total,
        "bytes": 0,
        "elapsed": 0.0,
        "rate": 0.0,
        "MBps": 0.0,
        "skipped": 0,
        "first_train_id": None,
        "last_train_id": None,
        "interrupted": False,
    }
    feed: queue.Queue = queue.Queue(maxsize=4)
    producer = threading.Thread(
        target=_produce,
        args=(reader, loops, dummy_timestamps and pace == "max", feed, stop),
        name="replay reader",
        daemon=True,
    )
    with Sender(endpoint, socket=socket, curve=curve) as sender:
        s["endpoint"] = sender.endpoint
        if ready is not None:
            ready(sender.endpoint)
        producer.start()
        t0 = time.monotonic()
        due, prev = t0, None
        try:
            while not stop.is_set():
                item = _get(feed, stop)
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                train, frames, nbytes = item
                if pace != "max":
                    due += _gap(pace, prev, train, max_gap)
                    prev = train
                    if stop.wait(max(0.0, due - time.monotonic())):
                        break
                    if dummy_timestamps:
                        frames = encode_train(_stamp(train, None))
                while not sender.send_frames(frames, timeout=_SEND_POLL):
                    if stop.is_set():
                        break
                else:
                    s["sent"] += 1
                    s["bytes"] += nbytes
                    s["first_train_id"] = s["first_train_id"] or train.train_id
                    s["last_train_id"] = train.train_id
                    _finish(s, t0, reader)
                    bar.update(s)
        except KeyboardInterrupt:
            s["interrupted"] = True
        finally:
            t_end = time.monotonic()
            interrupted = stop.is_set()
            stop.set()
            producer.join(timeout=5)
            if not interrupted and s["sent"] and s["socket"] != "PUB":
                time.sleep(linger)  # ZeroMQ drops in-flight messages when the socket closes
            sender.flush_and_close(timeout=5.0)
    s["interrupted"] = s["interrupted"] or (
        total is not None and s["sent"] < total - reader.skipped
    )
    _finish(s, t0, reader, t_end)
    bar.update(s, final=True)
    return s


def _finish(s: dict[str, Any], t0: float, reader: Reader, end: float | None = None) -> None:
    s["elapsed"] = (end or time.monotonic()) - t0
    s["rate"] = s["sent"] / s["elapsed"] if s["elapsed"] > 0 else 0.0
    s["MBps"] = s["bytes"] / 1e6 / s["elapsed"] if s["elapsed"] > 0 else 0.0
    s["skipped"] = reader.skipped


def _gap(pace: float | str, prev: Train | None, train: Train, max_gap: float) -> float:
    if prev is None:
        return 0.0
    if isinstance(pace, float):
        return 1.0 / pace
    if train.timestamp is not None and prev.timestamp is not None:
        gap = train.timestamp - prev.timestamp
    else:
        gap = (train.train_id - prev.train_id) * TRAIN_PERIOD
    return min(max(gap, 0.0), max_gap)


def _get(feed: queue.Queue, stop: threading.Event) -> Any:
    while not stop.is_set():
        try:
            return feed.get(timeout=_SEND_POLL)
        except queue.Empty:
            continue
    return None


def _produce(
    reader: Reader, loops: int | None, stamp: bool, feed: queue.Queue, stop: threading.Event
) -> None:
    try:
        for train in looped(reader, loops, stamp):
            frames = encode_train(train)
            nbytes = sum(len(f) if isinstance(f, bytes) else f.nbytes for f in frames)
            while not stop.is_set():
                try:
                    feed.put((train, frames, nbytes), timeout=_SEND_POLL)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        item: Any = None
    except BaseException as e:  # hand the error to the sending loop
        item = e
    while not stop.is_set():
        try:
            feed.put(item, timeout=_SEND_POLL)
            return
        except queue.Full:
            continue
