"""`DaskLiveExecutor`: a live run fanned out over Dask workers (``beamstream run --workers N``).

Every worker runs `beamstream.cluster.worker.live_loop` as a long-lived task: its own PULL
receiver on the PUSH source (ZeroMQ deals the trains out round-robin to the workers that are
ready), its own pipeline, its own partial state. Per-train data never reaches the scheduler or
this driver. At each collect the executor runs ``live_swap`` on every worker (each returns its
interval delta and restarts from empty; the delta stays on the worker as a future) and has Dask
merge the deltas pairwise in a tree; the `beamstream.runner.Runner` adds the merged delta to its
total and publishes snapshots as for any run.

A worker that disappears is dropped: the run goes on with the others, and its unmerged interval
is counted as lost (``lost_intervals`` / ``drops["worker_lost"]`` in the status).
"""

from __future__ import annotations

import collections
import functools
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from beamstream.accumulation import Partial, combine
from beamstream.cluster import worker as tasks
from beamstream.cluster.spec import PipelineSpec, merge_partials
from beamstream.config import ConfigError, PipelineConfig
from beamstream.counters import Counters

if TYPE_CHECKING:
    from beamstream.runner import Runner

__all__ = ["DaskLiveExecutor", "check_fanout"]

log = logging.getLogger(__name__)

#: a version switch is placed this many seconds of trains beyond the last one taken
SWITCH_MARGIN_S = 0.5


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


class DaskLiveExecutor:
    """Process a live run on ``backend``'s workers (see the module docstring).

    Parameters
    ----------
    backend
        A connected `beamstream.cluster.dask_backend.DaskBackend`.
    workers
        How many of the backend's workers to use (None: all connected at the start).
    ready_timeout
        Seconds the workers may take to build their pipelines and connect.
    collect_timeout
        Seconds a collect waits for the workers' deltas.
    """

    #: trains never reach this process, so nothing can record them here
    recorders: list = []

    def __init__(
        self,
        backend: Backend,
        *,
        workers: int | None = None,
        ready_timeout: float = 120.0,
        collect_timeout: float = 30.0,
    ):
        self.backend = backend
        self.n_workers = workers
        self.ready_timeout = ready_timeout
        self.collect_timeout = collect_timeout
        self.slots: list[_Slot] = []
        self.run_id = uuid.uuid4().hex[:8]
        self.taken = 0
        self.lost: dict[str, str] = {}
        self._lost = Counters()  # intervals lost with their workers, handed over at a collect
        self._idle_s = 0.0
        #: ids of every train the workers took, per merged delta (for checks and tests)
        self.train_ids: list[np.ndarray] = []
        self.late_switches = 0
        self._last_boundary = -1
        self._taken_at: collections.deque[tuple[float, int]] = collections.deque(maxlen=8)
        self._collect_s = 0.0  # how long the last collect took

    # -- executor interface -------------------------------------------------------------------
    def open(self, run: Runner) -> None:
        check_fanout(run.config)
        self.run = run
        self.spec = replace(PipelineSpec.from_config(run.config), fingerprint=run.fingerprint)
        addresses = self.backend.workers()
        if self.n_workers is not None:
            addresses = addresses[: self.n_workers]
        if not addresses:
            raise RuntimeError("no Dask workers are connected")
        for i, addr in enumerate(addresses):
            name = f"beamstream-live-{self.run_id}-{i}"
            loop = self.backend.submit_long(addr, tasks.live_loop, self.spec, name, key=name)
            self.slots.append(_Slot(name, addr, loop))
        self._wait_ready()
        log.info("%d workers receive from %s", len(self.slots), run.config.source.endpoint)

    def pump(self, deadline: float, limit: int | None) -> bool:
        timeout = self.run.config.source.timeout
        base = self.taken
        while not self.run.interrupted():
            self._check_workers()
            if not self._alive():
                log.error("every worker was lost: stopping")
                return False
            control = self.run.control
            steer = control is not None and control.pending()
            if limit is not None or timeout is not None or steer:  # a task per worker
                peeks = [p for p in self._peek(self._alive()).values() if p]
                self.taken = max(self.taken, sum(p["taken"] for p in peeks))
                if steer:
                    self._switch_workers(peeks)
                if timeout is not None and peeks and min(p["idle_s"] for p in peeks) > timeout:
                    log.warning("no train for %.1f s: stopping", timeout)
                    return False
            left = deadline - time.monotonic()
            if left <= 0 or (limit is not None and self.taken >= base + limit):
                return True
            time.sleep(min(0.25, left))
        return True

    def collect(self, fn: Any = tasks.live_swap) -> Partial | None:
        """Swap out every worker's delta and merge them in a Dask tree."""
        started = time.monotonic()
        try:
            return self._collect(fn)
        finally:
            self._collect_s = time.monotonic() - started

    def _collect(self, fn: Any) -> Partial | None:
        reuse = fn is tasks.live_swap
        futs = {
            s.name: (s.pending if reuse and s.pending is not None else None)
            or self.backend.call_on(s.address, fn, s.name)
            for s in self._alive()
        }
        ok = self._gather(futs, self.collect_timeout)
        delta = None
        if ok:
            root = self.backend.merge_tree(ok, merge_partials, self.spec)
            try:
                delta = self.backend.result(root, timeout=self.collect_timeout)
                control = self.run.control
                if control is not None and len(delta.train_ids):
                    control.note_trains(int(delta.train_ids.max()), len(delta.train_ids))
            except Exception as e:  # a worker lost while merging: those deltas are gone
                log.warning("merge of %d deltas failed (%s): interval lost", len(ok), e)
                self._lost.lose("worker_lost", len(ok))
        return self._with_losses(delta)

    def close(self) -> Partial | None:
        """Stop every worker and merge their last deltas."""
        parts = []
        if any(s.pending is not None for s in self._alive()):
            parts.append(self.collect())  # harvest the slow swaps first
        if self._alive():
            parts.append(self.collect(tasks.live_finish))
        self.backend.wait([s.loop for s in self.slots], timeout=10.0)
        self.backend.cancel([s.loop for s in self.slots if self.backend.state(s.loop) == "pending"])
        parts = [p for p in parts if p is not None]
        if not parts:
            return self._with_losses(None)
        return functools.reduce(functools.partial(combine, self.run.pipeline), parts)

    def pending(self) -> Counters | None:
        return None

    def reconfigure(self, run: Runner, boundary: int) -> None:
        """Every worker switches to ``run``'s new config version from train ``boundary`` on
        (trains below it stay with the version before)."""
        self.spec = replace(PipelineSpec.from_config(run.config), fingerprint=run.fingerprint)
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

    def _switch_workers(self, peeks: list[dict[str, Any]]) -> None:
        """Place the boundary of the queued versions beyond every worker's last train (or at
        a replayed version's recorded train) and switch there."""
        alive = self._alive()
        if not alive or any(s.pending is not None for s in alive):
            return  # a slow swap of the old version is still out: switch at the next pump
        ids = [p.get("last_id", -1) for p in peeks]
        last = max(ids, default=-1)
        now = time.monotonic()
        self._taken_at.append((now, sum(p["taken"] for p in peeks)))
        if last < 0 or min(ids) < self._last_boundary:
            return  # no train yet, or a worker has not yet reached the previous boundary
        (t0, n0), (t1, n1) = self._taken_at[0], self._taken_at[-1]
        if t1 - t0 < 0.2:
            return  # the train rate is not known yet: ask again at the next pump
        # beyond the trains that arrive while the old version is collected and the switch sent
        ahead = (n1 - n0) / (t1 - t0) * (SWITCH_MARGIN_S + 2 * self._collect_s)
        boundary = last + max(3, int(ahead) + 1)
        due = self.run.control.next_due() or 0
        if due > last:  # a replayed version: exactly at its recorded train
            boundary = due
        elif due:
            log.error("version due at train %d, workers are at %d: switching later", due, last)
            self.late_switches += 1
        switch = self.run.control.next_switch(boundary)
        if switch is not None:
            self.run.steering.switch(switch, boundary)

    def info(self) -> dict[str, Any]:
        return {
            **({"late_version_switches": self.late_switches} if self.late_switches else {}),
            "workers": len(self.slots),
            "workers_lost": len(self.lost),
            "lost_workers": dict(self.lost),
            "lost_intervals": self.run.counters.lost.get("worker_lost", 0)
            + self._lost.lost.get("worker_lost", 0),
        }

    # -- workers ------------------------------------------------------------------------------
    def _wait_ready(self) -> None:
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

    def _with_losses(self, delta: Partial | None) -> Partial | None:
        """``delta`` with the losses since the last collect added to its counters."""
        if not self._lost.lost:
            if delta is not None:
                self.train_ids.append(delta.train_ids)
            return delta
        if delta is None:
            delta = Partial(self.spec.fingerprint, self.run.pipeline.empty_states())
        delta.counters = delta.counters.merge(self._lost)
        self._lost = Counters()
        self.train_ids.append(delta.train_ids)
        return delta

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
        self.lost[slot.address] = reason
        self._lost.lose("worker_lost")
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
