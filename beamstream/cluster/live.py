"""`LiveDriver`: a live run fanned out over Dask workers (``beamstream run --workers N``).

Every worker runs `beamstream.cluster.worker.live_loop` as a long-lived task: its own PULL
receiver on the PUSH source (ZeroMQ deals the trains out round-robin to the workers that are
ready), its own pipeline, its own partial state. Per-train data never reaches the scheduler or
this driver. At each snapshot interval the driver runs ``live_swap`` on every worker (each returns
its interval delta and restarts from empty; the delta stays on the worker as a future), has Dask
merge the deltas pairwise in a tree, adds the merged delta to its total and publishes a snapshot
to the hub and the sinks, exactly like `beamstream.runner.Runner` (whose publishing, sinks,
signals and reset this class reuses).

A worker that disappears is dropped: the run goes on with the others, and its unmerged interval
is counted as lost (``lost_intervals`` / ``drops["worker_lost"]`` in the status).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TextIO

import numpy as np

from beamstream.cluster import worker as tasks
from beamstream.cluster.partial import ConfigVersionError, Partial, merge_partials
from beamstream.cluster.spec import PipelineSpec
from beamstream.cluster.status import ClusterStatus
from beamstream.config import ConfigError, PipelineConfig
from beamstream.processors.pipeline import States
from beamstream.runner import Runner
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub
from beamstream.streamer.train import Train

__all__ = ["LiveDriver", "check_fanout"]

log = logging.getLogger(__name__)

#: a version switch is placed this many seconds of trains beyond the last one taken
SWITCH_MARGIN_S = 0.5


def _tagged(spec: PipelineSpec, version: int) -> PipelineSpec:
    """``spec`` whose partials carry its config version: versions never merge by mistake."""
    return replace(spec, fingerprint=f"{spec.fingerprint.split('#')[0]}#v{version}")


class Backend(Protocol):
    """What the driver needs of `beamstream.cluster.dask_backend.DaskBackend`."""

    def workers(self) -> list[str]: ...
    def submit_long(self, address: str, fn: Any, *args: Any, key: str) -> Any: ...
    def call_on(self, address: str, fn: Any, *args: Any) -> Any: ...
    def wait(self, futures: Any, timeout: float) -> None: ...
    def state(self, future: Any) -> str: ...
    def error(self, future: Any) -> BaseException | None: ...
    def result(self, future: Any, timeout: float | None = None) -> Any: ...
    def cancel(self, futures: Iterable[Any]) -> None: ...
    def merge_tree(self, futures: Any, fn: Any, *args: Any) -> Any: ...


def check_fanout(config: PipelineConfig) -> None:
    """Raise `ConfigError` unless the source can be shared by several workers (PUSH/PULL)."""
    if config.source.socket.upper() != "PULL":
        raise ConfigError(
            f"{config.path}: source.socket: expected 'PULL' to fan trains out over workers "
            f"(the source must bind a PUSH socket: `beamstream simulate --socket PUSH`, "
            f"`beamstream replay --socket PUSH`), got {config.source.socket!r}"
        )


@dataclass
class _Slot:
    """One worker's share of the run."""

    name: str
    address: str
    loop: Any
    pending: Any = None  # a swap that did not finish in time, harvested at the next collect
    lost: bool = False


class LiveDriver(Runner):
    """Run ``config`` on ``backend``'s workers; same interface and snapshots as `Runner`.

    Parameters
    ----------
    config
        The pipeline; ``source.socket`` must be ``PULL`` (see `check_fanout`).
    backend
        A connected `beamstream.cluster.dask_backend.DaskBackend`.
    sinks, hub, states, status_out
        As for `Runner` (sinks that want every train, e.g. ``raw``, are refused: trains never
        reach the driver).
    workers
        How many of the backend's workers to use (None: all connected at the start).
    ready_timeout
        Seconds the workers may take to build their pipelines and connect.
    collect_timeout
        Seconds a snapshot waits for the workers' deltas.
    """

    def __init__(
        self,
        config: PipelineConfig,
        backend: Backend,
        sinks: Iterable[Sink] = (),
        hub: Hub | None = None,
        states: States | None = None,
        status_out: TextIO | None = sys.stderr,
        workers: int | None = None,
        ready_timeout: float = 120.0,
        collect_timeout: float = 30.0,
        control: Any = None,
    ):
        check_fanout(config)
        super().__init__(config, sinks, hub, states, status_out, control=control)
        config = self.config
        if self._train_sinks:
            names = ", ".join(s.name for s in self._train_sinks)
            raise ConfigError(
                f"{config.path}: sinks: {names} records every train where it is received; with "
                "workers, trains never reach the driver (record with a separate single-process run)"
            )
        self.backend = backend
        self.spec = PipelineSpec.from_config(config)
        #: fingerprint (tagged with the config version when steered) -> segment of its states
        self._segments: dict[str, int] = {}
        if control is not None:
            self.spec = _tagged(self.spec, control.current.number)
            self._segments[self.spec.fingerprint] = self.epoch
        self.late_switches = 0
        self._last_boundary = -1
        self.n_workers = workers
        self.ready_timeout = ready_timeout
        self.collect_timeout = collect_timeout
        self.cstatus = ClusterStatus()
        self.slots: list[_Slot] = []
        self.run_id = uuid.uuid4().hex[:8]
        #: ids of every train the workers took, per merged delta (for checks and tests)
        self.train_ids: list[np.ndarray] = []

    # -- the run ------------------------------------------------------------------------------
    def run(
        self,
        trains: int | None = None,
        duration: float | None = None,
        source: Iterable[Train] | None = None,
    ) -> dict[str, Any]:
        """Run until ``trains`` trains were taken (checked every 0.25 s, so a few more may be),
        ``duration`` s passed, every worker was idle ``source.timeout`` s, or a stop."""
        if source is not None:
            raise ValueError("a scaled-out run reads the live source; reprocess files instead")
        trains = trains if trains is not None else self.config.run.trains
        duration = duration if duration is not None else self.config.run.duration
        for sink in self.sinks:
            sink.start(self.hub)
        restore = self._install_signal_handlers()
        try:
            self._start_workers()
            self._drive(trains, duration)
        finally:
            try:
                self._finish()
            finally:
                restore()
                self.publish(final=True)
                self.hub.close()
                for sink in self.sinks:
                    sink.join(timeout=30)
        return self.status_dict()

    def _start_workers(self) -> None:
        addresses = self.backend.workers()
        if self.n_workers is not None:
            addresses = addresses[: self.n_workers]
        if not addresses:
            raise RuntimeError("no Dask workers are connected")
        for i, addr in enumerate(addresses):
            name = f"beamstream-live-{self.run_id}-{i}"
            loop = self.backend.submit_long(addr, tasks.live_loop, self.spec, name, key=name)
            self.slots.append(_Slot(name, addr, loop))
        self.cstatus.workers = len(self.slots)
        deadline = time.monotonic() + self.ready_timeout
        waiting = list(self.slots)
        while waiting:
            for s in list(waiting):
                err = self.backend.error(s.loop)
                if err is not None:
                    raise RuntimeError(f"worker {s.address} could not start: {err}") from err
            peeks = self._peek(waiting)
            waiting = [s for s in waiting if not (peeks.get(s.name) or {}).get("connected")]
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(waiting)} worker(s) not ready after {self.ready_timeout:.0f} s"
                )
            if waiting:
                time.sleep(0.1)
        log.info("%d workers receive from %s", len(self.slots), self.config.source.endpoint)

    def _drive(self, trains: int | None, duration: float | None) -> None:
        run = self.config.run
        t0 = time.monotonic()
        next_snapshot, next_status = t0 + run.interval, t0 + run.status_interval
        timeout = self.config.source.timeout
        while not self._stop.wait(min(0.25, run.interval)):
            if self._reset.is_set():
                self._collect()
                self._new_epoch()
            self._check_workers()
            if self.control is not None and self.control.pending():
                self._switch_workers()
            if not self._alive():
                log.error("every worker was lost: stopping")
                return
            now = time.monotonic()
            if now >= next_snapshot:
                self._collect()
                self.publish()
                next_snapshot = now + run.interval
            if now >= next_status:
                self._print_status()
                next_status = now + run.status_interval
            if duration is not None and now - t0 >= duration:
                return
            if trains is not None or timeout is not None:
                peeks = [p for p in self._peek(self._alive()).values() if p]
                taken = sum(p["taken"] for p in peeks)
                if trains is not None and taken >= trains:
                    return
                if timeout is not None and peeks and min(p["idle_s"] for p in peeks) > timeout:
                    log.warning("no train for %.1f s: stopping", timeout)
                    return

    # -- workers ------------------------------------------------------------------------------
    def _alive(self) -> list[_Slot]:
        return [s for s in self.slots if not s.lost]

    def _peek(self, slots: list[_Slot]) -> dict[str, dict[str, Any] | None]:
        futs = {s.name: self.backend.call_on(s.address, tasks.live_peek, s.name) for s in slots}
        self.backend.wait(list(futs.values()), timeout=10.0)
        return {
            n: self.backend.result(f) if self.backend.state(f) == "finished" else None
            for n, f in futs.items()
        }

    def _check_workers(self) -> None:
        connected = set(self.backend.workers())
        for s in self._alive():
            if s.address not in connected:
                self._lose(s, "worker gone")
            elif self.backend.state(s.loop) == "error":
                self._lose(s, f"live task failed: {self.backend.error(s.loop)}")

    def _lose(self, slot: _Slot, reason: str) -> None:
        slot.lost = True
        self.cstatus.lose(slot.address, reason)
        log.warning("lost worker %s (%s): its unmerged interval is lost", slot.address, reason)
        self.backend.cancel([f for f in (slot.loop, slot.pending) if f is not None])

    def _gather(self, futs: dict[str, Any], timeout: float) -> list[Any]:
        """The finished futures of ``futs`` (by slot name); failed slots are lost."""
        self.backend.wait(list(futs.values()), timeout)
        connected = set(self.backend.workers())
        ok = []
        for s in self._alive():
            f = futs.get(s.name)
            if f is None:
                continue
            state = self.backend.state(f)
            if state == "finished":
                s.pending = None
                ok.append(f)
            elif state in ("error", "cancelled") or s.address not in connected:
                self._lose(s, f"delta not collected: {self.backend.error(f) or state}")
            else:
                s.pending = f
                log.warning("worker %s slow to hand over its delta", s.address)
        return ok

    def _collect(self, fn: Any = tasks.live_swap) -> None:
        """Swap out every worker's delta, merge them in a Dask tree, add the result."""
        reuse = fn is tasks.live_swap
        futs = {
            s.name: (s.pending if reuse and s.pending is not None else None)
            or self.backend.call_on(s.address, fn, s.name)
            for s in self._alive()
        }
        ok = self._gather(futs, self.collect_timeout)
        if not ok:
            return
        root = self.backend.merge_tree(ok, merge_partials, self.spec)
        try:
            delta = self.backend.result(root, timeout=self.collect_timeout)
        except Exception as e:  # a worker lost while merging: those deltas are gone
            log.warning("merge of %d deltas failed (%s): interval lost", len(ok), e)
            self.cstatus.lost_intervals += len(ok)
            return
        self.apply(delta)

    def apply(self, delta: Partial) -> None:
        """Add a merged delta to the run's total, counters and per-train records (and the
        partials of earlier versions it carries to their segments)."""
        for earlier in delta.previous:
            self._apply_one(earlier)
        delta.previous = []
        self._apply_one(delta)
        if self.control is not None:
            self.control.note_trains(delta.last_train_id, delta.received)

    def _apply_one(self, delta: Partial) -> None:
        segment = self._segments.get(delta.fingerprint, self.epoch)
        if delta.fingerprint != self.spec.fingerprint and delta.fingerprint not in self._segments:
            raise ConfigVersionError(
                f"a delta of config version {delta.fingerprint} in a run of version "
                f"{self.spec.fingerprint}: never merged"
            )
        if segment == self.epoch:  # this version, or a compatible one of the same segment
            self.states = self.pipeline.merge(self.states, delta.states)
        else:  # trains before a boundary that arrived after it: to their closed segment
            closed = next(c for c in self.closed if c.index == segment)
            with closed._lock:
                closed.states = closed.pipeline.merge(closed.states, delta.states)
                closed.processed += delta.processed
                closed._results = None
        self.cstatus.add(delta)
        self.train_ids.append(delta.train_ids)
        for rec in delta.records:
            self.hub.add_record(rec)

    # -- config versions ----------------------------------------------------------------------
    def _switch_workers(self) -> None:
        """Take the queued versions at a train id beyond what any worker has taken, and have
        every worker switch there (trains below it stay with the version before)."""
        alive = self._alive()
        if not alive or any(s.pending is not None for s in alive):
            return  # a slow swap of the old version is still out: switch at the next tick
        peeks = [p for p in self._peek(alive).values() if p]
        ids = [p.get("last_id", -1) for p in peeks]
        last = max(ids, default=-1)
        if last < 0 or min(ids) < self._last_boundary:
            return  # no train yet, or a worker has not yet reached the previous boundary
        rate = float(self.cstatus.snapshot().get("trains_per_s") or 0.0)
        boundary = last + max(3, int(rate * SWITCH_MARGIN_S) + 1)
        due = self.control.next_due() or 0
        if due > last:  # a replayed version: exactly at its recorded train
            boundary = due
        elif due:
            log.error("version due at train %d, workers are at %d: switching later", due, last)
            self.late_switches += 1
        switch = self.control.next_switch(boundary)
        if switch is None:
            return
        self._collect()  # the old version's trains so far
        if switch.new_segment:
            self._close_segment()
            self.states = (switch.pipeline or self.pipeline).empty_states()
        if switch.pipeline is not None:
            self.pipeline, self.config = switch.pipeline, switch.config
            self.hub.config_text = self.config.text
        self.spec = _tagged(PipelineSpec.from_config(self.config), switch.version.number)
        self._segments[self.spec.fingerprint] = self.epoch
        futs = {
            s.name: self.backend.call_on(s.address, tasks.live_switch, s.name, self.spec, boundary)
            for s in self._alive()
        }
        self.backend.wait(list(futs.values()), self.collect_timeout)
        for name, f in futs.items():
            answer = self.backend.result(f) if self.backend.state(f) == "finished" else None
            if answer is None or answer.get("late"):
                self.late_switches += 1
                log.error("worker %s did not switch before train %d", name, boundary)
        self._last_boundary = boundary
        self.hub.info["config_version"] = switch.version.number
        log.info("config version %d from train %d on every worker", switch.version.number, boundary)

    def _finish(self) -> None:
        """Stop every worker and merge their last deltas."""
        if any(s.pending is not None for s in self._alive()):
            self._collect()  # harvest the slow swaps first
        if self._alive():
            self._collect(tasks.live_finish)
        self.backend.wait([s.loop for s in self.slots], timeout=10.0)
        self.backend.cancel([s.loop for s in self.slots if self.backend.state(s.loop) == "pending"])

    # -- status -------------------------------------------------------------------------------
    def status_dict(self) -> dict[str, Any]:
        status = self.cstatus.snapshot()
        if self.late_switches:
            status["late_version_switches"] = self.late_switches
        status["epoch"] = self.epoch
        status.update(self.hub.info)
        return status
