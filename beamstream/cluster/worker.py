"""Worker side of a live scaled-out run: `LiveWorker` and the task functions Dask runs.

``live_loop`` is the long-lived task: it builds the pipeline from the spec, connects its own PULL
`Receiver` to the PUSH source and processes trains until `live_finish`. ``live_swap`` (run on the
same worker at each snapshot) takes the interval's partial state out and restarts it from empty;
``live_peek`` reports progress cheaply. Workers find their `LiveWorker` by name in a per-process
registry, so none of this needs Dask (tests drive it in threads).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from beamstream.accumulation import Accumulation, Partial
from beamstream.cluster.spec import PipelineSpec
from beamstream.processors.pipeline import Pipeline
from beamstream.sources import Source, open_source

__all__ = ["LiveWorker", "live_loop", "live_swap", "live_peek", "live_switch", "live_finish"]

log = logging.getLogger(__name__)

_REGISTRY: dict[str, LiveWorker] = {}
_REGISTRY_LOCK = threading.Lock()


class LiveWorker:
    """One worker's share of a live run: receiver, pipeline and the interval's partial state.

    Parameters
    ----------
    spec
        The pipeline (its ``[source]`` must be a PULL socket on a PUSH source).
    name
        Unique name of this worker in the run (the registry key).
    """

    def __init__(self, spec: PipelineSpec, name: str):
        self.spec = spec
        self.name = name
        self.config = spec.config()
        self.pipeline = Pipeline(self.config)
        self.acc = Accumulation(
            self.pipeline, spec.fingerprint, max_records=self.config.run.records
        )
        self.receiver: Source | None = None
        #: the version before the last switch: trains with ids below ``switch_at`` go there
        self.old: Accumulation | None = None
        self.switch_at: int | None = None
        self.previous: list[Partial] = []
        self.last_id = -1  # the highest train id taken
        self.taken = 0  # trains taken from the receiver, over the whole run
        self.last_train_at = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.done = threading.Event()

    def run(self) -> dict[str, Any]:
        """Receive and process until `stop`; returns the receiver's final stats."""
        self.receiver = open_source(self.config)
        try:
            while not self._stop.is_set():
                train = self.receiver.get(timeout=0.2)
                if train is None:
                    if self.receiver.closed:
                        break
                    continue
                with self._lock:
                    tid = int(train.train_id)
                    old = self.old is not None and self.switch_at is not None
                    (self.old if old and tid < self.switch_at else self.acc).process(train)
                    self.last_id = max(self.last_id, tid)
                    self.taken += 1
                    self.last_train_at = time.monotonic()
            return self.receiver.stats()
        finally:
            self.receiver.close()
            self.done.set()

    def stop(self) -> None:
        self._stop.set()

    def swap(self) -> Partial:
        """The partial state since the last swap (the accumulation restarts from empty); the
        partials of earlier versions since then ride along in ``previous``."""
        rx = self.receiver.stats() if self.receiver is not None else {}
        with self._lock:
            out = self.acc.take({self.name: rx})
            out.previous, self.previous = self.previous, []
            if self.old is not None and self.old.counters.received:
                out.previous.append(self.old.take())
            return out

    def switch(self, spec: PipelineSpec, from_train_id: int) -> dict[str, Any]:
        """Process trains from ``from_train_id`` on with ``spec`` (a new config version).

        Trains with lower ids still go to the version before. ``late`` in the answer: this
        worker had already processed a train at or beyond the boundary with the old version.
        """
        config = spec.config()
        acc = Accumulation(Pipeline(config), spec.fingerprint, max_records=config.run.records)
        with self._lock:
            late = self.last_id >= from_train_id
            acc._recent = self.acc._recent  # one window of duplicate ids
            if self.old is not None and self.old.counters.received:
                self.previous.append(self.old.take())
            self.old, self.acc, self.switch_at = self.acc, acc, int(from_train_id)
            self.spec, self.config = spec, config
        return {"late": late, "last_id": self.last_id}

    def peek(self) -> dict[str, Any]:
        """Progress: trains taken (whole run) and seconds since the last one."""
        return {
            "taken": self.taken,
            "idle_s": time.monotonic() - self.last_train_at,
            "connected": self.receiver is not None,
            "last_id": self.last_id,
            "running": not self.done.is_set(),
        }


def _get(name: str) -> LiveWorker:
    with _REGISTRY_LOCK:
        w = _REGISTRY.get(name)
    if w is None:
        raise LookupError(f"no live worker {name!r} in this process")
    return w


def live_loop(spec: PipelineSpec, name: str) -> dict[str, Any]:
    """The long-lived task: build, register and run a `LiveWorker` until it is finished."""
    w = LiveWorker(spec, name)
    with _REGISTRY_LOCK:
        if name in _REGISTRY:
            raise RuntimeError(f"live worker {name!r} already runs in this process")
        _REGISTRY[name] = w
    try:
        return w.run()
    except BaseException:
        with _REGISTRY_LOCK:
            _REGISTRY.pop(name, None)
        raise


def live_swap(name: str) -> Partial:
    """Task: the named worker's interval delta."""
    return _get(name).swap()


def live_peek(name: str) -> dict[str, Any] | None:
    """Task: the named worker's progress (None while it is still starting)."""
    with _REGISTRY_LOCK:
        w = _REGISTRY.get(name)
    return None if w is None else w.peek()


def live_switch(name: str, spec: PipelineSpec, from_train_id: int) -> dict[str, Any]:
    """Task: the named worker switches to ``spec`` from train ``from_train_id`` on."""
    return _get(name).switch(spec, from_train_id)


def live_finish(name: str, timeout: float = 10.0) -> Partial:
    """Task: stop the named worker, and return (and forget) its last delta."""
    w = _get(name)
    w.stop()
    if not w.done.wait(timeout):
        log.warning("live worker %s did not stop within %.0f s", name, timeout)
    try:
        return w.swap()
    finally:
        with _REGISTRY_LOCK:
            _REGISTRY.pop(name, None)
