"""`Runner`: one run of a pipeline, wherever its trains are processed.

The runner holds what every run has: sinks started and joined, Ctrl-C and SIGTERM handled,
interval ticks, the epoch reset, snapshots on the hub and the final snapshot, written once.
Where trains are processed is its executor's business (`beamstream.executors`):

* `LocalExecutor`: a source in this process (the default; never imports Dask);
* `beamstream.cluster.live.DaskLiveExecutor`: Dask workers pulling from the live source;
* `beamstream.cluster.offline.DaskChunkExecutor`: chunks of an archived run, merged in a fixed
  tree.

An executor hands over `Partial` s (states and `Counters` of the trains since the last collect);
the runner merges them into its total and publishes snapshots of it. Published states are never
modified afterwards (merging makes new states), so a snapshot needs no copy.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol, TextIO

from beamstream.accumulation import Partial, check_version
from beamstream.config import PipelineConfig
from beamstream.control.controller import Controller
from beamstream.control.steering import Steering
from beamstream.counters import Counters
from beamstream.processors.pipeline import Pipeline, States
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub, Snapshot
from beamstream.status import RateWindow, format_status_line, status_view

__all__ = ["Runner", "Executor"]

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Where a run's trains are processed (see the module docstring and docs/architecture.md).

    ``open`` starts it for a runner; ``pump`` works until the monotonic ``deadline`` (or
    ``limit`` more trains, or `Runner.interrupted`) and returns False once no train will come;
    ``collect`` hands over the partial since the last collect; ``close`` stops and hands over
    the last one. ``pending`` gives the counters not yet collected (for the status line),
    ``info`` executor facts for the status (workers, chunks), ``taken`` the trains taken so far.
    """

    taken: int
    recorders: list[Sink]

    def open(self, run: Runner) -> None: ...
    def pump(self, deadline: float, limit: int | None) -> bool: ...
    def collect(self) -> Partial | None: ...
    def close(self) -> Partial | None: ...
    def pending(self) -> Counters | None: ...
    def info(self) -> dict[str, Any]: ...
    # steered runs only (a runner with a controller): follow the runner's new pipeline and
    # fingerprint from train ``boundary`` on (its partials so far were just collected)
    def reconfigure(self, run: Runner, boundary: int) -> None: ...


class Runner:
    """Run ``config`` with ``executor`` (a `LocalExecutor` on the config's source by default).

    Parameters
    ----------
    config
        The pipeline configuration (checked by building the pipeline before anything runs).
    executor
        Where trains are processed.
    sinks
        Sinks to feed (each reads the hub in its own thread).
    hub
        The hub to publish to (a new one by default).
    states
        Initial accumulator states (to resume a run); new empty states by default.
    status_out
        Where the live status line goes (None: nowhere).
    control
        The run's config versions (`beamstream.control.controller.Controller`): queued
        versions are switched to at a train boundary (`beamstream.control.steering.Steering`).
    """

    def __init__(
        self,
        config: PipelineConfig,
        executor: Executor | None = None,
        sinks: Iterable[Sink] = (),
        *,
        hub: Hub | None = None,
        states: States | None = None,
        status_out: TextIO | None = sys.stderr,
        control: Controller | None = None,
    ):
        from beamstream.executors import LocalExecutor

        if control is not None:
            config = control.config  # a resumed or replayed run starts from its version
        self.config = config
        self.pipeline = Pipeline(config)
        self.fingerprint = config.fingerprint
        self.executor: Executor = executor if executor is not None else LocalExecutor()
        self.hub = hub or Hub(config.run.records, config.text)
        self.sinks = list(sinks)
        self.states = states if states is not None else self.pipeline.empty_states()
        self.counters = Counters()
        self.status_out = status_out
        self.epoch = 0
        self.started = time.time()
        self._t0 = time.monotonic()
        self._rates = RateWindow()
        self._seq = 0
        self._stop = threading.Event()
        self._reset = threading.Event()
        self._snapshot_now = threading.Event()
        self.control = control
        self.steering = Steering(self, control) if control is not None else None

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

    def request_snapshot(self) -> None:
        """Publish a snapshot at the next tick (thread-safe)."""
        self._snapshot_now.set()

    def interrupted(self) -> bool:
        """True when the executor should hand control back (a stop or reset is pending)."""
        return self._stop.is_set() or self._reset.is_set()

    # -- running ------------------------------------------------------------------------------
    def run(self, trains: int | None = None, duration: float | None = None) -> dict[str, Any]:
        """Process until ``trains`` trains were taken, ``duration`` s passed, the executor has
        no more trains, or a stop; returns the final status dict."""
        trains = trains if trains is not None else self.config.run.trains
        duration = duration if duration is not None else self.config.run.duration
        outputs = self.sinks + [r for r in self.executor.recorders if r not in self.sinks]
        for sink in outputs:
            sink.start(self.hub)
        restore = self._install_signal_handlers()
        try:
            self.executor.open(self)
            self._loop(trains, duration)
        finally:
            try:
                self.apply(self.executor.close())
            finally:
                restore()
                self.publish(final=True)
                self.hub.close()
                for sink in outputs:
                    sink.join(timeout=60)
        return self.status_dict()

    def _loop(self, trains: int | None, duration: float | None) -> None:
        run = self.config.run
        t0 = time.monotonic()
        next_snapshot, next_status = t0 + run.interval, t0 + run.status_interval
        end = t0 + duration if duration is not None else float("inf")
        while True:
            if self._reset.is_set():
                self._new_epoch()
            limit = None if trains is None else trains - self.executor.taken
            more = self.executor.pump(min(next_snapshot, next_status, end), limit)
            now = time.monotonic()
            if now >= next_snapshot or self._snapshot_now.is_set():
                self._snapshot_now.clear()
                self.collect()
                self.publish()
                next_snapshot = now + run.interval
            if now >= next_status:
                self._print_status()
                next_status = now + run.status_interval
            if not more or self._stop.is_set() or now >= end:
                return
            if trains is not None and self.executor.taken >= trains:
                return

    def collect(self) -> None:
        """Merge the executor's partial since the last collect into the run's total."""
        self.apply(self.executor.collect())

    def apply(self, part: Partial | None) -> None:
        """Merge one partial (states, counters, records) into the run's total."""
        if part is not None and self.steering is not None:
            part = self.steering.take_apart(part)  # other versions' partials go their way
        if part is None:
            return
        check_version(self.fingerprint, part)
        if part.cumulative:
            self.states = part.states
        else:
            self.states = self.pipeline.merge(self.states, part.states)
        self.counters = self.counters.merge(part.counters)
        self._rates.add(self.counters)
        for rec in part.records:
            self.hub.add_record(rec)

    def _new_epoch(self) -> None:
        self._reset.clear()
        self.collect()
        self.hub.close_epoch(self.publish())  # the closed epoch stays in the results
        self.epoch += 1
        self.states = self.pipeline.empty_states()
        log.info("accumulation reset: epoch %d", self.epoch)

    def status_dict(self) -> dict[str, Any]:
        """The run's status: a view of its counters (with the executor's uncollected ones)."""
        counters = self.counters
        pending = self.executor.pending()
        if pending is not None:
            counters = counters.merge(pending)
            self._rates.add(counters)
        status = status_view(
            counters, self.started, time.monotonic() - self._t0, self._rates.rates()
        )
        status["epoch"] = self.epoch
        status.update(self.executor.info())
        status.update(self.hub.info)
        return status

    def publish(self, final: bool = False) -> Snapshot:
        """Publish a snapshot of the current states (finalized lazily, in a sink's thread)."""
        self._seq += 1
        states = dict(self.states)
        results = functools.partial(self.pipeline.finalize, states)
        snap = Snapshot(
            self._seq,
            time.time(),
            results,
            states,
            status=self.status_dict(),
            epoch=self.epoch,
            final=final,
            versions=self.steering.versions() if self.steering is not None else (),
            closed=tuple(self.steering.closed) if self.steering is not None else (),
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
