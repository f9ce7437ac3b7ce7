"""`Accumulation`: the only place a train meets the pipeline; `Partial`: what it hands over.

An accumulation holds the accumulator states, the `Counters` and the per-train rules: a train id
seen among the last 4096 trains is rejected as a duplicate; a train a transform rejects
(`Rejected`) and a train whose processing raised are counted and skipped, so one bad train never
stops a run. `Accumulation.take` swaps the states and counters out as a `Partial` and restarts
from empty (no copy): a local run takes one at each snapshot, a Dask worker at each collect, a
chunk task at its end. Partials of different config fingerprints are never merged.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from beamstream.counters import Counters
from beamstream.processors.base import Rejected, TrainView
from beamstream.processors.pipeline import Pipeline, States
from beamstream.streamer.ratelog import RateLimitedLog
from beamstream.streamer.train import Train

__all__ = ["Accumulation", "Partial", "ConfigVersionError", "combine"]

log = logging.getLogger(__name__)
_RECENT_IDS = 4096


class ConfigVersionError(ValueError):
    """Two partial states of different config versions (fingerprints) were to be merged."""


@dataclass
class Partial:
    """Accumulator states of some trains, with their counters.

    Attributes
    ----------
    fingerprint
        The config version the states belong to.
    states
        ``{accumulator name: state}``.
    counters
        What happened to the trains.
    train_ids
        Ids of every train taken (uint64, in the order they were taken).
    records
        Per-train records of the accepted trains (kept only when asked for).
    cumulative
        True when ``states`` are a run's whole total so far rather than a delta (an offline run
        merged in a fixed tree hands over the merge of its completed chunks).
    previous
        Partials of earlier config versions handed over with this one (a worker that switched
        versions since its last collect); never merged with it, kept apart by fingerprint.
    """

    fingerprint: str
    states: States
    counters: Counters = field(default_factory=Counters)
    train_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    records: list[dict[str, Any]] = field(default_factory=list)
    cumulative: bool = False
    previous: list[Partial] = field(default_factory=list)


def check_version(fingerprint: str, part: Partial, what: str = "partial") -> None:
    """Raise `ConfigVersionError` unless ``part`` has ``fingerprint``."""
    if part.fingerprint != fingerprint:
        raise ConfigVersionError(
            f"{what} states of config version {part.fingerprint} in a run of version "
            f"{fingerprint} are never merged"
        )


def combine(pipeline: Pipeline, a: Partial, b: Partial) -> Partial:
    """``a`` and ``b`` merged with ``pipeline``'s accumulators (inputs are not modified)."""
    check_version(a.fingerprint, b)
    return Partial(
        a.fingerprint,
        pipeline.merge(a.states, b.states),
        a.counters.merge(b.counters),
        np.concatenate([a.train_ids, b.train_ids]),
        a.records + b.records,
        previous=a.previous + b.previous,
    )


class Accumulation:
    """States + counters + the per-train rules (see the module docstring). Not thread-safe.

    Parameters
    ----------
    pipeline
        The pipeline to run (not shared with another thread).
    fingerprint
        The config version the states belong to.
    max_records
        Per-train records kept until the next `take` (0: none).
    on_accept
        Called with the view of every accepted train (e.g. to publish records as they come).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        fingerprint: str,
        *,
        max_records: int = 0,
        on_accept: Callable[[TrainView], None] | None = None,
    ):
        self.pipeline = pipeline
        self.fingerprint = fingerprint
        self.max_records = max_records
        self.on_accept = on_accept
        self._recent: dict[int, None] = {}
        self._errlog = RateLimitedLog(log, interval=5.0)
        self._new()

    def _new(self) -> None:
        self.states = self.pipeline.empty_states()
        self.counters = Counters()
        self.ids: list[int] = []
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=self.max_records)

    def process(self, train: Train) -> bool:
        """Process one train into the states; True when it was accepted."""
        tid = int(train.train_id)
        self.counters.seen(tid)
        self.ids.append(tid)
        if tid in self._recent:
            self.counters.reject("duplicate train id")
            return False
        self._recent[tid] = None
        if len(self._recent) > _RECENT_IDS:
            del self._recent[next(iter(self._recent))]
        try:
            view = self.pipeline.process(train, self.states)
        except Rejected as r:
            self.counters.reject(r.reason)
            if r.detail:  # e.g. the shape found and the shape expected
                self._errlog.warning(r.reason, "train %d rejected: %s", tid, r)
            return False
        except Exception as e:  # one bad train must not stop the run
            kind = type(e).__name__
            self.counters.error(kind)
            self._errlog.error(kind, "train %d skipped: %s: %s", tid, kind, e)
            return False
        for reason in view.products.get("excluded", ()):
            self.counters.reject(f"excluded {reason}")  # part of an accepted train left out
        latency = time.monotonic() - train.received_at if train.received_at else None
        self.counters.accept(tid, int(view.records.get("accepted_frames", 0)), latency)
        if self.max_records:
            self.records.append(view.records)
        if self.on_accept is not None:
            self.on_accept(view)
        return True

    def take(self, sources: dict[str, dict[str, Any]] | None = None) -> Partial:
        """The partial since the last take (states swapped out, not copied); restarts empty."""
        counters = self.counters
        counters.sources.update(sources or {})
        out = Partial(
            self.fingerprint,
            self.states,
            counters,
            np.asarray(self.ids, np.uint64),
            list(self.records),
        )
        self._new()
        return out

    def reconfigure(self, pipeline: Pipeline, fingerprint: str) -> Partial:
        """Switch to another pipeline (a new config version) at a train boundary.

        Returns the partial of the old version; the id window of duplicates is kept.
        """
        out = self.take()
        self.pipeline, self.fingerprint = pipeline, fingerprint
        self._new()
        return out
