"""Small helpers shared by the benchmark scripts: timing, throughput, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Stopwatch", "mbps", "environment", "write_json", "stopwatch"]


class Stopwatch:
    """Elapsed wall-clock seconds between `start` and `stop` (monotonic, high resolution)."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.t1: float | None = None

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.t1 = None

    def stop(self) -> float:
        self.t1 = time.perf_counter()
        return self.elapsed

    @property
    def elapsed(self) -> float:
        """Seconds from `start` to `stop` (or to now while running)."""
        if self.t0 is None:
            return 0.0
        return (self.t1 if self.t1 is not None else time.perf_counter()) - self.t0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """``with stopwatch() as sw: ...``; ``sw.elapsed`` afterwards."""
    sw = Stopwatch()
    sw.start()
    try:
        yield sw
    finally:
        sw.stop()


def mbps(nbytes: float, seconds: float) -> float:
    """Throughput in MB/s (10**6 bytes per second)."""
    return nbytes / seconds / 1e6 if seconds > 0 else float("nan")


def environment() -> dict[str, Any]:
    """What a result depends on: host, Python, CPU count and library versions."""
    import numpy
    import zmq

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "numpy": numpy.__version__,
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "loadavg_1min": os.getloadavg()[0],  # other work on the machine skews every number
    }


def write_json(path: str | os.PathLike[str], result: dict[str, Any]) -> None:
    """Write ``result`` as indented JSON (parent folders are created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
