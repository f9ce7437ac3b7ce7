"""`Runner`: receiver thread -> pipeline -> periodic snapshots on the hub -> sinks.

One train that fails in a processor is counted, logged (rate-limited) and skipped; the run goes
on. Ctrl-C and SIGTERM stop the run cleanly with a final snapshot.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from beamstream.config import PipelineConfig
from beamstream.control.controller import Controller, Switch
from beamstream.control.segments import ClosedSegment
from beamstream.processors.base import Rejected
from beamstream.processors.pipeline import Pipeline, States
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub, Snapshot
from beamstream.status import RunStatus, format_status_line
from beamstream.streamer.ratelog import RateLimitedLog
from beamstream.streamer.receiver import Receiver
from beamstream.streamer.train import Train

__all__ = ["Runner"]

log = logging.getLogger(__name__)
_RECENT_IDS = 4096
_BUSY_WINDOW_S = 0.5


class Runner:
    """Run a pipeline on a live stream (or on any iterable of trains).

    Parameters
    ----------
    config
        The pipeline configuration.
    sinks
        Sinks to feed (each reads the hub in its own thread).
    hub
        The hub to publish to (a new one by default).
    states
        Initial accumulator states (to resume a run); new empty states by default.
    status_out
        Where the live status line goes (None: nowhere).
    control
        Config versions for this run (`beamstream.control.controller.Controller`): versions
        it has queued are switched to before a train, all processors at once.
    """

    def __init__(
        self,
        config: PipelineConfig,
        sinks: Iterable[Sink] = (),
        hub: Hub | None = None,
        states: States | None = None,
        status_out: TextIO | None = sys.stderr,
        control: Controller | None = None,
    ):
        self.config = control.config if control is not None else config
        config = self.config
        self.pipeline = Pipeline(config)  # checks every processor before anything is received
        self.hub = hub or Hub(config.run.records, config.text)
        self.sinks = list(sinks)
        #: sinks that also take every received train (e.g. the raw recorder)
        self._train_sinks = [s for s in self.sinks if getattr(s, "wants_trains", False)]
        self.states = states if states is not None else self.pipeline.empty_states()
        self.status = RunStatus()
        self.status_out = status_out
        self.epoch = 0
        self._seq = 0
        self._stop = threading.Event()
        self._reset = threading.Event()
        self._recent_ids: dict[int, None] = {}
        self._errlog = RateLimitedLog(log, interval=5.0)
        self.receiver: Receiver | None = None
        self.control = control
        self.closed: list[ClosedSegment] = []
        self._snapshot_now = threading.Event()
        self._segment_processed = 0  # trains processed before the current segment
        if control is not None:
            self.epoch = control.current.segment
            self.hub.info["config_version"] = control.current.number
            control.status = self.status_dict
            control.on_snapshot = self._snapshot_now.set

    # -- control (thread-safe) ----------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to finish (a final snapshot is still published)."""
        self._stop.set()

    def reset(self) -> None:
        """Start a new epoch: accumulation restarts from empty states at the next train."""
        if self.control is not None:  # recorded as a version: a replay resets there too
            self.control.reset("dashboard", wait=0)
        else:
            self._reset.set()

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        trains: int | None = None,
        duration: float | None = None,
        source: Iterable[Train] | None = None,
    ) -> dict[str, Any]:
        """Process until ``trains`` trains were received, ``duration`` s passed, or a stop.

        ``source`` replaces the configured receiver (e.g. a replay reader); returns the final
        status dict.
        """
        trains = trains if trains is not None else self.config.run.trains
        duration = duration if duration is not None else self.config.run.duration
        for sink in self.sinks:
            sink.start(self.hub)
        restore = self._install_signal_handlers()
        try:
            self._loop(self._trains(source), trains, duration)
        finally:
            if self.receiver is not None:
                self.receiver.close()
            restore()
            self.publish(final=True)
            self.hub.close()
            for sink in self.sinks:
                sink.join(timeout=30)
        return self.status_dict()

    def _trains(self, source: Iterable[Train] | None) -> Iterator[Train | None]:
        """Trains, or None when none arrived for a short while (so the loop can tick)."""
        if source is not None:
            for train in source:
                if not train.received_at:
                    train.received_at = time.monotonic()
                yield train
            return
        src = self.config.source
        self.receiver = Receiver(src.endpoint, src.socket, queue=src.queue, policy=src.policy)
        idle_since = time.monotonic()
        while not self.receiver.closed:
            train = self.receiver.get(timeout=0.2)
            if train is not None:
                idle_since = time.monotonic()
            elif src.timeout is not None and time.monotonic() - idle_since > src.timeout:
                log.warning("no train for %.1f s: stopping", src.timeout)
                return
            yield train

    def _loop(
        self, feed: Iterator[Train | None], trains: int | None, duration: float | None
    ) -> None:
        t0 = time.monotonic()
        next_snapshot = t0 + self.config.run.interval
        next_status = t0 + self.config.run.status_interval
        received = 0
        busy, window_start = 0.0, t0
        for train in feed:
            if self._reset.is_set():
                self._new_epoch()
            if train is not None:
                received += 1
                started = time.monotonic()
                if self.control is not None:
                    switch = self.control.next_switch(train.train_id)
                    if switch is not None:
                        self._switch(switch)
                self.process(train)
                if self.control is not None:
                    self.control.processed(train.train_id)
                busy += time.monotonic() - started
            now = time.monotonic()
            if now - window_start >= _BUSY_WINDOW_S:
                # the fraction of time spent processing: displays back off when it nears 1
                self.hub.busy = busy / (now - window_start)
                busy, window_start = 0.0, now
            if now >= next_snapshot or self._snapshot_now.is_set():
                self._snapshot_now.clear()
                self.publish()
                next_snapshot = now + self.config.run.interval
            if now >= next_status:
                self._print_status()
                next_status = now + self.config.run.status_interval
            if self._stop.is_set() or (trains is not None and received >= trains):
                break
            if duration is not None and now - t0 >= duration:
                break

    def process(self, train: Train) -> bool:
        """Process one train into the current states; True when it was accepted."""
        self.status.seen(train.train_id)
        for sink in self._train_sinks:
            sink.put_train(train)  # must not block: the sink queues it for its own thread
        if train.train_id in self._recent_ids:
            self.status.reject("duplicate train id")
            return False
        self._remember(train.train_id)
        try:
            view = self.pipeline.process(train, self.states)
        except Rejected as r:
            self.status.reject(r.reason)
            return False
        except Exception as e:  # one bad train must not stop the run
            kind = type(e).__name__
            self.status.error(kind)
            self._errlog.error(kind, "train %d skipped: %s: %s", train.train_id, kind, e)
            return False
        latency = time.monotonic() - train.received_at if train.received_at else 0.0
        self.status.accepted(train.train_id, int(view.records.get("accepted_frames", 0)), latency)
        self.hub.add_record(view.records)
        self.hub.set_latest(view)
        return True

    def _remember(self, tid: int) -> None:
        self._recent_ids[tid] = None
        if len(self._recent_ids) > _RECENT_IDS:
            del self._recent_ids[next(iter(self._recent_ids))]

    def _new_epoch(self) -> None:
        self._reset.clear()
        self.publish()
        self.epoch += 1
        self.states = self.pipeline.empty_states()
        log.info("accumulation reset: epoch %d", self.epoch)

    def _switch(self, switch: Switch) -> None:
        """Change to the versions of ``switch`` before the next train."""
        if switch.new_segment:
            self._close_segment()
        if switch.pipeline is not None:
            self.pipeline, self.config = switch.pipeline, switch.config
            self.hub.config_text = self.config.text
        if switch.new_segment:
            self.states = self.pipeline.empty_states()
        self.hub.info["config_version"] = switch.version.number
        log.info(
            "config version %d (%s) from the next train", switch.version.number, switch.version.kind
        )

    def _close_segment(self) -> None:
        """Keep the states of the current segment (never merged with the next one)."""
        self.publish()
        mine = [v for v in self.control.log.list() if v.segment == self.epoch]
        firsts = [v.first_train_id for v in mine if v.first_train_id is not None]
        lasts = [v.last_train_id for v in mine if v.last_train_id is not None]
        processed = int(self.status_dict().get("processed", 0))
        self.closed.append(
            ClosedSegment(
                index=self.epoch,
                versions=tuple(v.number for v in mine),
                first_train_id=min(firsts) if firsts else None,
                last_train_id=max(lasts) if lasts else None,
                processed=processed - self._segment_processed,
                states=self.states,
                pipeline=self.pipeline,
            )
        )
        self._segment_processed = processed
        self.epoch += 1

    def status_dict(self) -> dict[str, Any]:
        rx = self.receiver.stats() if self.receiver is not None else None
        status = self.status.snapshot(rx)
        status["epoch"] = self.epoch
        status.update(self.hub.info)
        return status

    def publish(self, final: bool = False) -> Snapshot:
        """Finalize the current states and publish a snapshot to the hub."""
        self._seq += 1
        status = self.status_dict()
        states = {k: _copy_state(s) for k, s in self.states.items()}
        # finalized lazily from the copied states, in the first sink thread that reads it
        results = functools.partial(self.pipeline.finalize, states)
        versions = (
            tuple(dataclasses.replace(v) for v in self.control.log.list())
            if self.control is not None
            else ()
        )
        snap = Snapshot(
            self._seq,
            time.time(),
            results,
            states,
            status,
            self.epoch,
            final,
            versions=versions,
            closed=tuple(self.closed),
        )
        self.hub.publish(snap)
        return snap

    def _print_status(self) -> None:
        if self.status_out is None:
            return
        line = format_status_line(self.status_dict())
        live = getattr(self.status_out, "isatty", lambda: False)()
        self.status_out.write(("\r" + line[:200]) if live else line + "\n")
        self.status_out.flush()

    def _install_signal_handlers(self):  # noqa: ANN202 - returns a restore function
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: object) -> None:
            log.warning("signal %d: stopping after a final snapshot", signum)
            self.stop()

        for s in previous:
            signal.signal(s, handler)

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        return restore


def _copy_state(state: Any) -> Any:
    return state.copy() if hasattr(state, "copy") else copy.deepcopy(state)
