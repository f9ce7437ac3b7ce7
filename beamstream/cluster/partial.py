"""`Partial`: a partial state with its counters; `Accumulation` builds one from trains.

A partial is what moves between Dask processes: the accumulator states of some trains (plain
numpy arrays, cheap to pickle), what happened to those trains (processed, rejected, errors), the
ids of the trains, their per-train records and the config fingerprint. Partials of different
fingerprints (config versions) are never merged.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from beamstream.cluster.spec import PipelineSpec, borrowed_pipeline
from beamstream.processors.base import Rejected
from beamstream.processors.pipeline import Pipeline, States
from beamstream.streamer.ratelog import RateLimitedLog
from beamstream.streamer.train import Train

__all__ = ["Partial", "Accumulation", "merge_partials", "ConfigVersionError"]

log = logging.getLogger(__name__)

#: per-train latencies kept per partial (for the p50/p99 of the status)
MAX_LATENCIES = 1000
_RECENT_IDS = 4096


class ConfigVersionError(ValueError):
    """Two partial states of different config versions (fingerprints) were to be merged."""


@dataclass
class Partial:
    """Accumulator states of some trains, with their counters (see the module docstring).

    Attributes
    ----------
    fingerprint
        The config version the states belong to.
    states
        ``{accumulator name: state}``.
    received, processed, frames
        Trains taken, trains accepted, accepted frames.
    rejected, errors
        Counts by reason / exception type.
    train_ids
        Ids of every train taken (int64, in the order they were taken).
    accepted_ids
        ``(min, max)`` of the accepted train ids, or None.
    latencies
        Seconds from receipt to end of processing (the last `MAX_LATENCIES`).
    records
        Per-train records of the accepted trains.
    sources
        ``{worker or chunk name: receiver stats or reader facts}``.
    previous
        Partials of earlier config versions handed over with this one (a worker that switched
        versions since the last swap); never merged with it, kept apart by fingerprint.
    """

    fingerprint: str
    states: States
    received: int = 0
    processed: int = 0
    frames: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    train_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    accepted_ids: tuple[int, int] | None = None
    latencies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    records: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    previous: list[Partial] = field(default_factory=list)

    @property
    def first_train_id(self) -> int | None:
        return int(self.train_ids.min()) if len(self.train_ids) else None

    @property
    def last_train_id(self) -> int | None:
        return int(self.train_ids.max()) if len(self.train_ids) else None


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    return dict(collections.Counter(a) + collections.Counter(b))


def _union_range(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), max(a[1], b[1]))


def combine(pipeline: Pipeline, a: Partial, b: Partial) -> Partial:
    """``a`` and ``b`` merged with ``pipeline``'s accumulators (inputs are not modified).

    Raises
    ------
    ConfigVersionError
        When the partials belong to different config versions.
    """
    if a.fingerprint != b.fingerprint:
        raise ConfigVersionError(
            f"partial states of different config versions ({a.fingerprint} vs {b.fingerprint}) "
            "are never merged"
        )
    return Partial(
        a.fingerprint,
        pipeline.merge(a.states, b.states),
        a.received + b.received,
        a.processed + b.processed,
        a.frames + b.frames,
        _add_counts(a.rejected, b.rejected),
        _add_counts(a.errors, b.errors),
        np.concatenate([a.train_ids, b.train_ids]),
        _union_range(a.accepted_ids, b.accepted_ids),
        np.concatenate([a.latencies, b.latencies])[-MAX_LATENCIES:],
        a.records + b.records,
        {**a.sources, **b.sources},
        a.previous + b.previous,
    )


def merge_partials(spec: PipelineSpec, a: Partial, b: Partial) -> Partial:
    """`combine` with a pooled pipeline of ``spec`` (the Dask merge-tree task)."""
    with borrowed_pipeline(spec) as pipeline:
        return combine(pipeline, a, b)


class Accumulation:
    """Process trains into states and counters the way `beamstream.runner.Runner` does.

    A train id seen in the last 4096 trains is rejected as a duplicate; a `Rejected` train and a
    train whose processing raised are counted and skipped. Not thread-safe: the caller locks.

    Parameters
    ----------
    pipeline
        The pipeline to run (not shared with another thread).
    fingerprint
        The config version the states belong to.
    max_records
        Per-train records kept until the next `take` (older ones are dropped).
    """

    def __init__(self, pipeline: Pipeline, fingerprint: str, max_records: int = 10000):
        self.pipeline = pipeline
        self.fingerprint = fingerprint
        self.max_records = max_records
        self._recent: dict[int, None] = {}
        self._errlog = RateLimitedLog(log, interval=5.0)
        self._new()

    def _new(self) -> None:
        self.states = self.pipeline.empty_states()
        self.received = self.processed = self.frames = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.ids: list[int] = []
        self.accepted_ids: tuple[int, int] | None = None
        self.latencies: collections.deque[float] = collections.deque(maxlen=MAX_LATENCIES)
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=self.max_records)

    def process(self, train: Train) -> bool:
        """Process one train; True when it was accepted."""
        tid = int(train.train_id)
        self.received += 1
        self.ids.append(tid)
        if tid in self._recent:
            self.rejected["duplicate train id"] += 1
            return False
        self._recent[tid] = None
        if len(self._recent) > _RECENT_IDS:
            del self._recent[next(iter(self._recent))]
        try:
            view = self.pipeline.process(train, self.states)
        except Rejected as r:
            self.rejected[r.reason] += 1
            return False
        except Exception as e:  # one bad train must not stop the run
            kind = type(e).__name__
            self.errors[kind] += 1
            self._errlog.error(kind, "train %d skipped: %s: %s", tid, kind, e)
            return False
        self.processed += 1
        self.frames += int(view.records.get("accepted_frames", 0))
        self.accepted_ids = _union_range(self.accepted_ids, (tid, tid))
        if train.received_at:
            self.latencies.append(time.monotonic() - train.received_at)
        self.records.append(view.records)
        return True

    def take(self, sources: dict[str, dict[str, Any]] | None = None) -> Partial:
        """The partial accumulated since the last take; accumulation restarts from empty."""
        out = Partial(
            self.fingerprint,
            self.states,
            self.received,
            self.processed,
            self.frames,
            dict(self.rejected),
            dict(self.errors),
            np.asarray(self.ids, np.int64),
            self.accepted_ids,
            np.asarray(self.latencies, float),
            list(self.records),
            dict(sources or {}),
        )
        self._new()
        return out
