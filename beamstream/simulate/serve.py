"""Stream simulated trains over the Karabo Bridge protocol, paced by the wall clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from beamstream.simulate._common import (
    FIRST_TRAIN_ID,
    SimulatedDetector,
    source_metadata,
)
from beamstream.simulate.dssc import DsscSimulator
from beamstream.simulate.rixs import RixsSimulator
from beamstream.simulate.saxs import SaxsSimulator
from beamstream.streamer.train import Train

if TYPE_CHECKING:
    from beamstream.streamer.curve import CurveServer

__all__ = ["SIMULATORS", "make_simulator", "simulate"]

#: detector name -> simulator class
SIMULATORS: dict[str, type[SimulatedDetector]] = {
    "saxs": SaxsSimulator,
    "dssc": DsscSimulator,
    "rixs": RixsSimulator,
}

#: seconds of lag after which pacing restarts from now instead of catching up in a burst
MAX_LAG = 1.0
#: seconds a single send waits before the stop flag is checked again
_SEND_POLL = 0.2


def make_simulator(
    detector: str,
    seed: int = 0,
    frames: int | None = None,
    first_train_id: int = FIRST_TRAIN_ID,
    **options: Any,
) -> SimulatedDetector:
    """A simulator by name (``saxs``, ``dssc``, ``rixs``).

    Parameters
    ----------
    detector
        Key of `SIMULATORS`.
    seed
        Seed of everything random.
    frames
        Frames per train (None: the detector's default: saxs 1, dssc 100, rixs 1).
    first_train_id
        Train id of the first train.
    **options
        Detector options (e.g. ``scan=(ny, nx)`` for saxs, ``photons=`` for rixs).
    """
    try:
        cls = SIMULATORS[detector]
    except KeyError:
        raise ValueError(
            f"detector {detector!r}: expected one of {', '.join(SIMULATORS)}"
        ) from None
    kw: dict[str, Any] = dict(options)
    if frames is not None:
        kw["frames"] = int(frames)
    return cls(seed=seed, first_train_id=first_train_id, **kw)


def simulate(
    detector: str | SimulatedDetector,
    endpoint: str = "tcp://127.0.0.1:4545",
    socket: str = "REP",
    rate: float = 10.0,
    trains: int | None = None,
    frames: int | None = None,
    seed: int = 0,
    protocol: str = "2.2",
    progress: Callable[[dict[str, Any]], None] | None = None,
    stop_event: threading.Event | None = None,
    first_train_id: int = FIRST_TRAIN_ID,
    ready: Callable[[str], None] | None = None,
    curve: CurveServer | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Stream simulated trains with a `Sender` until ``trains`` were sent or it is stopped.

    Train ``k`` is due at ``start + k / rate`` (wall clock, so no drift accumulates); a train
    that is late goes out at once, and after more than `MAX_LAG` s of lag (a slow client) the
    schedule restarts from now. The schedule starts when the first train is taken (REP: at the
    first client's ``next``), so start-up and a late client cause no burst.

    Parameters
    ----------
    detector
        ``"saxs"``, ``"dssc"``, ``"rixs"``, or a `SimulatedDetector` instance.
    endpoint, socket, protocol, curve
        Passed to `Sender` (``socket`` REP, PUB or PUSH; ``curve``: CURVE keys, None: off).
    rate
        Trains per second; 0: as fast as the client takes them.
    trains
        Number of trains to send (None: until ``stop_event`` is set or Ctrl-C).
    frames, seed, first_train_id, **options
        Passed to `make_simulator` (ignored for an instance).
    progress
        Called about once a second, and at the end, with the running summary.
    stop_event
        Set it to stop (checked at least every 0.2 s, also while waiting for a client).
    ready
        Called with the bound endpoint once the socket is bound.

    Returns
    -------
    dict
        ``detector``, ``endpoint``, ``socket``, ``sent``, ``first_train_id``,
        ``last_train_id`` (None if nothing was sent), ``elapsed`` [s, from the call],
        ``rate`` (achieved trains/s between the first and the last train sent), ``late``
        (trains sent more than one period late), ``interrupted``.
    """
    from beamstream.streamer.sender import Sender  # the sender imports zmq; keep this lazy

    if rate < 0:
        raise ValueError(f"rate: expected >= 0, got {rate!r}")
    if trains is not None and trains < 0:
        raise ValueError(f"trains: expected >= 0, got {trains!r}")
    if isinstance(detector, SimulatedDetector):
        sim = detector
    else:
        sim = make_simulator(detector, seed, frames, first_train_id, **options)
    stop = stop_event or threading.Event()
    period = 1.0 / rate if rate > 0 else 0.0
    summary: dict[str, Any] = {
        "detector": sim.detector,
        "endpoint": endpoint,
        "socket": socket.upper(),
        "sent": 0,
        "first_train_id": sim.first_train_id,
        "last_train_id": None,
        "elapsed": 0.0,
        "rate": 0.0,
        "late": 0,
        "interrupted": False,
    }
    with Sender(endpoint, socket=socket, protocol=protocol, curve=curve) as sender:
        summary["endpoint"] = sender.endpoint
        if ready is not None:
            ready(sender.endpoint)
        t_start = time.monotonic()
        anchor, k = t_start, 0
        last_report = t_start
        tid = sim.first_train_id
        train: Train | None = None
        try:
            while (trains is None or summary["sent"] < trains) and not stop.is_set():
                if train is None:  # generate ahead of the due time, stamp at sending
                    train = sim.train(tid)
                due = anchor + k * period
                now = time.monotonic()
                if period and now < due:
                    if stop.wait(due - now):
                        break
                elif period and now - due > MAX_LAG:
                    anchor, k = now, 0
                elif period and now - due > period:
                    summary["late"] += 1
                _restamp(train, time.time())
                while not sender.send(train, timeout=_SEND_POLL):
                    if stop.is_set():
                        break
                else:
                    t_sent = time.monotonic()
                    if summary["sent"] == 0:  # the clock starts with the first train taken
                        anchor, k, summary["_t_first"] = t_sent, 0, t_sent
                    summary["_t_last"] = t_sent
                    summary["sent"] += 1
                    summary["last_train_id"] = tid
                    train, tid, k = None, tid + 1, k + 1
                now = time.monotonic()
                if progress is not None and now - last_report >= 1.0:
                    last_report = now
                    progress(_finish(summary, t_start))
        except KeyboardInterrupt:
            summary["interrupted"] = True
        sender.flush_and_close(timeout=1.0)  # let the last replies/messages leave
    summary["interrupted"] = summary["interrupted"] or stop.is_set()
    summary = _finish(summary, t_start)
    if progress is not None:
        progress(summary)
    return summary


def _restamp(train: Train, timestamp: float) -> None:
    """Give a generated train the wall-clock time of its sending."""
    train.timestamp = timestamp
    for src in train.meta:
        train.meta[src] = source_metadata(src, train.train_id, timestamp)


def _finish(summary: dict[str, Any], t_start: float) -> dict[str, Any]:
    summary["elapsed"] = time.monotonic() - t_start
    span = summary.get("_t_last", 0.0) - summary.get("_t_first", 0.0)
    summary["rate"] = (summary["sent"] - 1) / span if span > 0 else 0.0
    return {k: v for k, v in summary.items() if not k.startswith("_")}
