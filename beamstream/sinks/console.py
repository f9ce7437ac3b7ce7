"""`ConsoleSink`: prints a short summary of each snapshot's results."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import numpy as np

from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Snapshot

__all__ = ["ConsoleSink", "summarize"]


def summarize(results: dict[str, dict[str, Any]]) -> list[str]:
    """One line per result: name, dims and shape, and the range of its finite values."""
    lines = []
    for proc, named in results.items():
        for name, res in named.items():
            data = np.asarray(res.data)
            dims = ",".join(f"{d}={n}" for d, n in zip(res.dims, data.shape, strict=True))
            finite = data[np.isfinite(data)] if data.dtype.kind in "fc" else data.ravel()
            rng = f"[{finite.min():.4g} .. {finite.max():.4g}]" if finite.size else "(empty)"
            unit = f" {res.units}" if res.units else ""
            lines.append(f"  {proc}.{name}({dims}) {rng}{unit}")
    return lines


class ConsoleSink(Sink):
    """Print each snapshot (every ``every`` snapshots, and always the final one)."""

    name = "console"

    def __init__(self, every: int = 5, out: TextIO | None = None):
        super().__init__(every=every)
        self.every = max(1, int(every))
        self.out = out or sys.stdout

    def write(self, snapshot: Snapshot) -> None:
        if not snapshot.final and snapshot.seq % self.every:
            return
        head = "final results" if snapshot.final else f"snapshot {snapshot.seq}"
        lines = [f"{head} (epoch {snapshot.epoch}):", *summarize(snapshot.results)]
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
