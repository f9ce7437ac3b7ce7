"""Compile a pipeline's numba kernels before the first train, with a visible status.

numba compiles a kernel for each argument type on its first call, and caches the machine code on
disk (``cache=True``; the cache directory is set in `beamstream.__init__`). The first run of a
pipeline thus spends seconds compiling; later runs load the cache. `warm_up` pushes a synthetic
train of the configured shape and dtype through the pipeline on throw-away states, so that this
happens before the source is read (and says so while it compiles); the real first train then
finds every kernel ready.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import numpy as np

from beamstream.config import PipelineConfig
from beamstream.processors.base import Rejected, TrainView
from beamstream.processors.layout import canonical_axes
from beamstream.processors.pipeline import Pipeline
from beamstream.streamer.train import Train

__all__ = ["warm_up", "watch_compiles", "synthetic_train", "cache_dir", "process_started_at"]

log = logging.getLogger(__name__)
_FRAMES = 2


def cache_dir() -> str | None:
    """Where numba caches compiled kernels (None: next to the sources)."""
    from numba.core.config import CACHE_DIR

    return CACHE_DIR or None


def process_started_at() -> float:
    """Unix time at which this process started (Linux ``/proc``; else the package's import)."""
    import os

    from beamstream import IMPORTED_AT

    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return IMPORTED_AT


class _CompileCounter:
    """Counts numba compilations (cache misses) and their time; says so on the first one."""

    def __init__(self, out: TextIO | None):
        self.out = out
        self.count = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def on_start(self) -> None:
        with self._lock:
            self.count += 1
            first = self.count == 1
        if first and self.out is not None:
            self.out.write("compiling kernels (first run only) ...\n")
            self.out.flush()


@contextmanager
def watch_compiles(out: TextIO | None = sys.stderr) -> Iterator[_CompileCounter]:
    """Count the numba compilations inside the block (printing a note on the first)."""
    from numba.core import event

    counter = _CompileCounter(out)

    class _Listener(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            counter.on_start()

        def on_end(self, ev: event.Event) -> None:
            pass

    listener = _Listener()
    event.register("numba:compile", listener)
    try:
        yield counter
    finally:
        event.unregister("numba:compile", listener)


def synthetic_train(config: PipelineConfig, train_id: int = 1) -> Train:
    """A train of zeros shaped like the configured detector data (read-only, as if received).

    The array has the configured layout, ``frame_shape`` (16x16 when not set) and ``dtype``
    (float32 when not set); slow-data inputs are absent.
    """
    src = config.source
    frame = tuple(src.frame_shape or (16, 16))
    canon = ("frame", *("module", "y", "x")[-len(frame) :])
    dims = canonical_axes(tuple(src.layout)) if src.layout else canon
    sizes = dict(zip([d for d in ("module", "y", "x") if d in dims], frame, strict=False))
    shape = tuple(_FRAMES if d == "frame" else sizes.get(d, 1) for d in dims)
    arr = np.zeros(shape, dtype=np.dtype(src.dtype or "float32"))
    arr.setflags(write=False)
    data = {src.detector: {src.key: arr}} if src.detector else {}
    return Train(train_id, time.time(), data, {s: {} for s in data}, {})


def warm_up(pipeline: Pipeline, config: PipelineConfig, out: TextIO | None = sys.stderr) -> float:
    """Run a synthetic train through ``pipeline`` on throw-away states; seconds spent compiling.

    Transforms that reject the synthetic train (it has no slow data) are skipped; an accumulator
    that fails on it is skipped too (its kernels then compile on the first real train). Returns 0
    when every kernel came from the cache.
    """
    if config.source.frame_shape is None or not config.source.detector:
        return 0.0  # the shape is known only from the first train: kernels compile on it
    t0 = time.monotonic()
    with watch_compiles(out) as counter:
        _run_synthetic(pipeline, config)
    took = time.monotonic() - t0
    if counter.count and out is not None:
        out.write(f"kernels compiled in {took:.1f} s (cached in {cache_dir() or 'the package'})\n")
        out.flush()
    return took if counter.count else 0.0


def _run_synthetic(pipeline: Pipeline, config: PipelineConfig) -> None:
    view = TrainView(synthetic_train(config), slots=pipeline.slots)
    for t in pipeline.transforms:
        try:
            view = t(view)
        except Rejected:
            continue
        except Exception as e:  # noqa: BLE001 - a warm-up never stops a run
            log.debug("warm-up: transform %s skipped: %s", getattr(t, "name", t), e)
    if view.frames is not None and view.frame_slot is None and len(pipeline.slots) > 1:
        view.frame_slot = np.arange(view.n_frames, dtype=np.int64) % len(pipeline.slots)
    states: dict[str, Any] = pipeline.empty_states()
    for acc in pipeline.accumulators:
        try:
            acc.update(states[acc.name], view)
        except Exception as e:  # noqa: BLE001
            log.debug("warm-up: %s skipped: %s", acc.name, e)
