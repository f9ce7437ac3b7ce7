"""`ClusterStatus`: the run status of a scaled-out run, summed from the partials it merged.

Its `snapshot` has the keys of `beamstream.status.RunStatus.snapshot` (so the status line, the
HDF5 provenance and the dashboard read it unchanged) plus ``workers``, ``workers_lost``,
``lost_intervals`` (partial states lost with their worker) and, offline, ``chunks_done`` /
``chunks_total``.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np

from beamstream.cluster.partial import Partial

__all__ = ["ClusterStatus"]

_RATE_WINDOW_S = 5.0


class ClusterStatus:
    """Counters of a scaled-out run (see the module docstring)."""

    def __init__(self) -> None:
        self.started = time.time()
        self._t0 = time.monotonic()
        self.received = self.processed = self.frames = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.first_train_id: int | None = None
        self.last_train_id: int | None = None
        self.accepted_ids: tuple[int, int] | None = None
        self.workers = 0
        self.lost: dict[str, str] = {}
        self.lost_intervals = 0
        self.chunks_done = 0
        self.chunks_total: int | None = None
        self.sources: dict[str, dict[str, Any]] = {}
        self._latency: collections.deque[float] = collections.deque(maxlen=1000)
        self._rates: collections.deque[tuple[float, int, int]] = collections.deque()

    def add(self, p: Partial) -> None:
        """Count the trains of one merged partial."""
        self.received += p.received
        self.processed += p.processed
        self.frames += p.frames
        self.rejected.update(p.rejected)
        self.errors.update(p.errors)
        if p.first_train_id is not None:
            lo, hi = p.first_train_id, p.last_train_id
            first, last = self.first_train_id, self.last_train_id
            self.first_train_id = lo if first is None else min(lo, first)
            self.last_train_id = hi if last is None else max(hi, last)
        if p.accepted_ids is not None:
            a, b = self.accepted_ids or p.accepted_ids
            self.accepted_ids = (min(a, p.accepted_ids[0]), max(b, p.accepted_ids[1]))
        self._latency.extend(np.asarray(p.latencies).tolist())
        self.sources.update(p.sources)
        now = time.monotonic()
        self._rates.append((now, self.processed, self.frames))
        while len(self._rates) > 2 and now - self._rates[0][0] > _RATE_WINDOW_S:
            self._rates.popleft()

    def lose(self, name: str, reason: str, interval_lost: bool = True) -> None:
        """A worker was lost (with its unmerged interval when ``interval_lost``)."""
        self.lost[name] = reason
        self.lost_intervals += int(interval_lost)

    def snapshot(self) -> dict[str, Any]:
        """A plain dict with the keys of `RunStatus.snapshot` and the cluster's own."""
        now = time.monotonic()
        tps = fps = 0.0
        if len(self._rates) > 1:
            (t0, p0, f0), (t1, p1, f1) = self._rates[0], self._rates[-1]
            if t1 > t0:
                tps, fps = (p1 - p0) / (t1 - t0), (f1 - f0) / (t1 - t0)
        lat = np.asarray(self._latency) if self._latency else None
        drops: dict[str, int] = collections.Counter()
        mbps = 0.0
        for src in self.sources.values():
            drops.update(src.get("dropped", {}))
            mbps += float(src.get("MB_per_s", 0.0))
        drops.update({f"rejected:{k}": v for k, v in self.rejected.items()})
        drops.update({f"error:{k}": v for k, v in self.errors.items()})
        if self.lost_intervals:
            drops["worker_lost"] = self.lost_intervals
        return {
            "run_time_s": now - self._t0,
            "started": self.started,
            "processed": self.processed,
            "received": self.received,
            "frames": self.frames,
            "trains_per_s": tps,
            "frames_per_s": fps,
            "MB_per_s": mbps,
            "drops": dict(drops),
            "rejected": dict(self.rejected),
            "errors": dict(self.errors),
            "latency_p50_s": float(np.percentile(lat, 50)) if lat is not None else None,
            "latency_p99_s": float(np.percentile(lat, 99)) if lat is not None else None,
            "first_train_id": self.first_train_id,
            "last_train_id": self.last_train_id,
            "accepted_train_ids": self.accepted_ids,
            "workers": self.workers,
            "workers_lost": len(self.lost),
            "lost_workers": dict(self.lost),
            "lost_intervals": self.lost_intervals,
            "chunks_done": self.chunks_done,
            "chunks_total": self.chunks_total,
        }
