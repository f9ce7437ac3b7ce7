"""`RunStatus`: counters, rates and latency percentiles of a running pipeline."""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np

__all__ = ["RunStatus", "format_status_line"]

_WINDOW_S = 2.0


class RunStatus:
    """Counts trains processed/rejected/failed, frames, and per-train processing latency.

    Latency is measured from a train's receipt (the receiver's time stamp) to the end of its
    processing; p50/p99 are over the last ``latency_window`` trains.
    """

    def __init__(self, latency_window: int = 1000):
        self.started = time.time()
        self._t0 = time.monotonic()
        self.processed = 0
        self.received = 0
        self.frames = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.first_train_id: int | None = None
        self.last_train_id: int | None = None
        self.accepted_ids: tuple[int, int] | None = None
        self.first_processed_at: float | None = None  # unix time of the first accepted train
        self.last_train_at: float | None = None  # unix time the last train was seen
        self._latency: collections.deque[float] = collections.deque(maxlen=latency_window)
        self._recent: collections.deque[tuple[float, int]] = collections.deque()

    def seen(self, train_id: int) -> None:
        self.received += 1
        self.last_train_at = time.time()
        if self.first_train_id is None:
            self.first_train_id = train_id
        self.last_train_id = train_id

    def accepted(self, train_id: int, frames: int, latency: float) -> None:
        self.processed += 1
        self.frames += frames
        if self.first_processed_at is None:
            self.first_processed_at = time.time()
        lo, hi = self.accepted_ids or (train_id, train_id)
        self.accepted_ids = (min(lo, train_id), max(hi, train_id))
        self._latency.append(latency)
        now = time.monotonic()
        self._recent.append((now, frames))
        while len(self._recent) > 2 and now - self._recent[0][0] > _WINDOW_S:
            self._recent.popleft()

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    def snapshot(self, receiver_stats: dict[str, Any] | None = None) -> dict[str, Any]:
        """A plain dict for the hub, the sinks and the status line."""
        now = time.monotonic()
        stopped = bool(self._recent) and now - self._recent[-1][0] > _WINDOW_S
        span = now - self._recent[0][0] if len(self._recent) > 1 and not stopped else 0.0
        n = len(self._recent) - 1
        frames = sum(f for _, f in list(self._recent)[1:])
        lat = np.asarray(self._latency) if self._latency else None
        rx = receiver_stats or {}
        drops = {**rx.get("dropped", {})}
        drops.update({f"rejected:{k}": v for k, v in self.rejected.items()})
        drops.update({f"error:{k}": v for k, v in self.errors.items()})
        return {
            "run_time_s": now - self._t0,
            "started": self.started,
            "processed": self.processed,
            "received": rx.get("received", self.received),
            "frames": self.frames,
            "trains_per_s": n / span if span > 0 else 0.0,
            "frames_per_s": frames / span if span > 0 else 0.0,
            "MB_per_s": rx.get("MB_per_s", 0.0),
            "drops": drops,
            "rejected": dict(self.rejected),
            "errors": dict(self.errors),
            "latency_p50_s": float(np.percentile(lat, 50)) if lat is not None else None,
            "latency_p99_s": float(np.percentile(lat, 99)) if lat is not None else None,
            "first_train_id": self.first_train_id,
            "last_train_id": self.last_train_id,
            "accepted_train_ids": self.accepted_ids,
            "first_processed_at": self.first_processed_at,
            "last_train_at": self.last_train_at,
        }


def format_status_line(s: dict[str, Any]) -> str:
    """One human-readable line from `RunStatus.snapshot`."""
    drops = ", ".join(f"{k}={v}" for k, v in sorted(s["drops"].items())) or "none"
    p50, p99 = s["latency_p50_s"], s["latency_p99_s"]
    lat = f"{p50 * 1e3:.1f}/{p99 * 1e3:.1f} ms" if p50 is not None else "-"
    return (
        f"[{s['run_time_s']:6.1f}s] {s['trains_per_s']:5.1f} trains/s {s['frames_per_s']:7.0f} "
        f"frames/s | processed {s['processed']} | latency p50/p99 {lat} | drops: {drops} | "
        f"last train {s['last_train_id']}"
    )
