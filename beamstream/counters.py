"""`Counters`: one mergeable record of what happened to the trains of a run.

Every view of a run's progress reads one: the status line, the hub's status (dashboard), a
scaled-out run's status and the HDF5 provenance segments. A worker, a chunk or an interval keeps
its own `Counters`; merging is addition of counts, union of train-id ranges and of source stats,
and the latest `MAX_LATENCIES` latency samples, so it is exact and associative (and commutative
apart from the order of the latency samples and a source reported twice, where the later wins).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Counters", "MAX_LATENCIES"]

#: latency samples kept (the latest ones; p50/p99 of the status are over these)
MAX_LATENCIES = 1000


def _add(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + int(v)
    return out


def _lo(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _hi(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass
class Counters:
    """What happened to some trains (see the module docstring).

    Attributes
    ----------
    received, processed, frames
        Trains taken by the pipeline, trains accepted, accepted frames.
    rejected, errors
        Trains rejected by reason (a transform's `Rejected`, a duplicate id) and trains that
        raised, by exception type.
    first_train_id, last_train_id
        Lowest and highest id of the trains taken.
    accepted_ids
        ``(lowest, highest)`` id of the accepted trains, or None.
    latencies
        Seconds from receipt to the end of processing, the latest `MAX_LATENCIES`.
    sources
        ``{name: stats}`` of the sources (receiver stats, chunk facts), merged by name.
    lost
        Losses outside the pipeline by reason (e.g. ``worker_lost`` intervals).
    """

    received: int = 0
    processed: int = 0
    frames: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first_train_id: int | None = None
    last_train_id: int | None = None
    accepted_ids: tuple[int, int] | None = None
    latencies: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_LATENCIES)
    )
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)

    # -- counting (the hot path: plain attribute updates) ------------------------------------
    def seen(self, train_id: int) -> None:
        """A train was taken."""
        self.received += 1
        self.first_train_id = _lo(self.first_train_id, train_id)
        self.last_train_id = _hi(self.last_train_id, train_id)

    def accept(self, train_id: int, frames: int, latency: float | None) -> None:
        """A train was accepted with ``frames`` accepted frames."""
        self.processed += 1
        self.frames += frames
        lo, hi = self.accepted_ids or (train_id, train_id)
        self.accepted_ids = (min(lo, train_id), max(hi, train_id))
        if latency is not None:
            self.latencies.append(latency)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def lose(self, reason: str, n: int = 1) -> None:
        self.lost[reason] = self.lost.get(reason, 0) + n

    # -- merging ------------------------------------------------------------------------------
    def merge(self, other: Counters) -> Counters:
        """A new record of both (see the module docstring); the inputs are not modified."""
        acc = other.accepted_ids
        if self.accepted_ids is not None and acc is not None:
            acc = (min(self.accepted_ids[0], acc[0]), max(self.accepted_ids[1], acc[1]))
        return Counters(
            self.received + other.received,
            self.processed + other.processed,
            self.frames + other.frames,
            _add(self.rejected, other.rejected),
            _add(self.errors, other.errors),
            _lo(self.first_train_id, other.first_train_id),
            _hi(self.last_train_id, other.last_train_id),
            self.accepted_ids if acc is None else acc,
            collections.deque([*self.latencies, *other.latencies], maxlen=MAX_LATENCIES),
            {**self.sources, **other.sources},
            _add(self.lost, other.lost),
        )

    def copy(self) -> Counters:
        return Counters().merge(self)

    # -- views --------------------------------------------------------------------------------
    def drops(self) -> dict[str, int]:
        """Every loss by reason: source drops, ``rejected:...``, ``error:...`` and ``lost``."""
        out: dict[str, int] = {}
        for src in self.sources.values():
            out = _add(out, src.get("dropped", {}))
        out.update({f"rejected:{k}": v for k, v in self.rejected.items()})
        out.update({f"error:{k}": v for k, v in self.errors.items()})
        return _add(out, self.lost)

    def latency(self, q: float) -> float | None:
        """The ``q``-th percentile of the latency samples (None without samples)."""
        return float(np.percentile(np.asarray(self.latencies), q)) if self.latencies else None

    def source_rate(self) -> float:
        """Summed ``MB_per_s`` of the sources."""
        return float(sum(float(s.get("MB_per_s", 0.0)) for s in self.sources.values()))
