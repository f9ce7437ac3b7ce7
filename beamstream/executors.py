"""`LocalExecutor`: a run's trains processed in this process, from a source or any iterable.

The Dask executors live in `beamstream.cluster` (`DaskLiveExecutor`, `DaskChunkExecutor`); this
module never imports Dask.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from beamstream.accumulation import Accumulation, Partial
from beamstream.counters import Counters
from beamstream.processors.base import TrainView
from beamstream.sinks.base import Sink
from beamstream.streamer.train import Train

if TYPE_CHECKING:
    from beamstream.runner import Runner

__all__ = ["LocalExecutor"]

log = logging.getLogger(__name__)
_BUSY_WINDOW_S = 0.5
_END = object()


class LocalExecutor:
    """Process trains in the runner's thread (see `beamstream.runner.Runner`).

    Parameters
    ----------
    source
        A `beamstream.sources.Source` or any iterable of trains (a replay reader, a list);
        None opens the config's ``[source]`` when the run starts (and closes it at the end).
    recorders
        Sinks that take every train as it is received (e.g. the raw recorder,
        `beamstream.sinks.recorder.RawRecorder`); their ``put_train`` must not block.
    """

    def __init__(self, source: Iterable[Train] | None = None, *, recorders: Iterable[Sink] = ()):
        self.source = source
        self.recorders = list(recorders)
        self.taken = 0
        self._owned = source is None
        self._held: Train | None = None
        self._busy = 0.0
        self._window_start = time.monotonic()

    # -- executor interface -------------------------------------------------------------------
    def open(self, run: Runner) -> None:
        self.run = run
        self.acc = Accumulation(run.pipeline, run.fingerprint, on_accept=self._accepted)
        if self.source is None:
            from beamstream.sources import open_source

            self.source = open_source(run.config)
        self._source_events = getattr(self.source, "events", None)
        self._feed = self._trains()

    def pump(self, deadline: float, limit: int | None) -> bool:
        done = 0
        while not self.run.interrupted() and (limit is None or done < limit):
            train = self._held if self._held is not None else next(self._feed, _END)
            self._held = None
            if train is _END:
                return False
            now = time.monotonic()
            if train is not None:
                if self._events():  # a new epoch starts before this train
                    self._held = train
                    return True
                control = self.run.control
                if control is not None:  # config versions switch before a train
                    switch = control.next_switch(train.train_id)
                    if switch is not None:
                        self.run.steering.switch(switch, train.train_id)
                self._process(train)
                if control is not None:
                    control.processed(train.train_id)
                done += 1
                now = time.monotonic()
            if now - self._window_start >= _BUSY_WINDOW_S:
                # the fraction of time spent processing: displays back off when it nears 1
                self.run.hub.busy = self._busy / (now - self._window_start)
                self._busy, self._window_start = 0.0, now
            if now >= deadline:
                return True
        return True

    def collect(self) -> Partial:
        return self.acc.take(self._stats())

    def close(self) -> Partial | None:
        if not hasattr(self, "acc"):
            return None
        if self._owned and self.source is not None:
            self.source.close()  # type: ignore[attr-defined]
        return self.acc.take(self._stats())

    def pending(self) -> Counters | None:
        return self.acc.counters if hasattr(self, "acc") else None

    def reconfigure(self, run: Runner, boundary: int) -> None:
        """The next trains go through ``run``'s new pipeline (its partial was just taken)."""
        leftover = self.acc.reconfigure(run.pipeline, run.fingerprint)
        if leftover.counters.received:  # pragma: no cover - the runner collected just before
            log.warning(
                "%d trains of the old version were still in hand", leftover.counters.received
            )

    def info(self) -> dict[str, Any]:
        return {}

    # -- internals ----------------------------------------------------------------------------
    def _process(self, train: Train) -> None:
        for rec in self.recorders:
            rec.put_train(train)  # must not block: the recorder queues it for its own thread
        started = time.monotonic()
        self.acc.process(train)
        self._busy += time.monotonic() - started
        self.taken += 1

    def _accepted(self, view: TrainView) -> None:
        self.run.hub.add_record(view.records)
        self.run.hub.set_latest(view)

    def _events(self) -> bool:
        """True when the source asked for a new epoch (the runner is told)."""
        events = self._source_events
        if events is not None and "new_epoch" in events():
            self.run.reset()
            return True
        return False

    def _stats(self) -> dict[str, dict[str, Any]]:
        stats = getattr(self.source, "stats", None)
        return {"source": stats()} if stats is not None else {}

    def _trains(self) -> Iterator[Train | None]:
        """Trains, or None when none arrived for a short while (so the loop can tick)."""
        src = self.source
        if not hasattr(src, "get"):
            for train in src:  # type: ignore[union-attr]
                if not train.received_at:
                    train.received_at = time.monotonic()
                yield train
            return
        timeout = self.run.config.source.timeout
        idle_since = time.monotonic()
        while not src.closed:
            train = src.get(timeout=0.2)
            if train is not None:
                idle_since = time.monotonic()
            elif timeout is not None and time.monotonic() - idle_since > timeout:
                log.warning("no train for %.1f s: stopping", timeout)
                return
            yield train
