"""The status of a run: a view of its `Counters` with rates, as a plain dict and one line.

`status_view` gives the keys every reader uses (status line, hub, dashboard, HDF5 provenance,
``beamstream run``'s summary): ``processed``, ``received``, ``frames``, ``drops``, ``rejected``,
``errors``, latency percentiles, train-id ranges, rates and times (``last_train_at``: when a
source last received a message, for the dashboard's stale state).
"""

from __future__ import annotations

import collections
import time
from typing import Any

from beamstream.counters import Counters

__all__ = ["RateWindow", "status_view", "format_status_line"]


class RateWindow:
    """Trains and frames per second over the last ``window`` seconds of samples."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self._samples: collections.deque[tuple[float, int, int]] = collections.deque()

    def add(self, counters: Counters, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, counters.processed, counters.frames))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window:
            self._samples.popleft()

    def rates(self) -> tuple[float, float]:
        """``(trains_per_s, frames_per_s)``."""
        if len(self._samples) < 2:
            return 0.0, 0.0
        (t0, p0, f0), (t1, p1, f1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return 0.0, 0.0
        return (p1 - p0) / (t1 - t0), (f1 - f0) / (t1 - t0)


def status_view(
    counters: Counters, started: float, run_time: float, rates: tuple[float, float] = (0, 0)
) -> dict[str, Any]:
    """The status dict of a run (see the module docstring)."""
    return {
        "run_time_s": run_time,
        "started": started,
        "processed": counters.processed,
        "received": counters.received,
        "frames": counters.frames,
        "trains_per_s": float(rates[0]),
        "frames_per_s": float(rates[1]),
        "MB_per_s": counters.source_rate(),
        "drops": counters.drops(),
        "rejected": dict(counters.rejected),
        "errors": dict(counters.errors),
        "latency_p50_s": counters.latency(50),
        "latency_p99_s": counters.latency(99),
        "first_train_id": counters.first_train_id,
        "last_train_id": counters.last_train_id,
        "accepted_train_ids": counters.accepted_ids,
        "last_train_at": _last_received(counters),
    }


def _last_received(counters: Counters) -> float | None:
    """Unix time of the last message any source received (None: unknown or none yet)."""
    times = [
        s.get("last_received_at")
        for s in counters.sources.values()
        if isinstance(s, dict) and isinstance(s.get("last_received_at"), int | float)
    ]
    return max(times) if times else None


def format_status_line(s: dict[str, Any]) -> str:
    """One human-readable line from `status_view`."""
    drops = ", ".join(f"{k}={v}" for k, v in sorted(s["drops"].items())) or "none"
    p50, p99 = s["latency_p50_s"], s["latency_p99_s"]
    lat = f"{p50 * 1e3:.1f}/{p99 * 1e3:.1f} ms" if p50 is not None else "-"
    return (
        f"[{s['run_time_s']:6.1f}s] {s['trains_per_s']:5.1f} trains/s {s['frames_per_s']:7.0f} "
        f"frames/s | processed {s['processed']} | latency p50/p99 {lat} | drops: {drops} | "
        f"last train {s['last_train_id']}"
    )
