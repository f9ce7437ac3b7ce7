"""Offline reprocessing of an archived run over train chunks (``beamstream reprocess``).

The pipeline is mapped over the run's chunks (`beamstream.cluster.chunks.plan_chunks`): with a
Dask backend, ``client.map`` with ``retries`` (a chunk of a lost worker is re-run elsewhere) and
results taken ``as_completed``; without one, in this process, chunk after chunk. Either way the
chunk states are merged in the same `MergeTree` fixed by chunk index, so the final states are
identical to an in-process run over the same chunking (bit-identical for float data too) and, for
integer data, to a single-process `Runner` over the whole run. While it runs, snapshots of the
merged-so-far results go to the hub (HDF5 file, dashboard), and per-train records are added in
train order.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, Protocol, TextIO

import numpy as np

from beamstream.accumulation import Partial, check_version
from beamstream.cluster.chunks import Chunk, MergeTree, plan_chunks, process_chunk
from beamstream.cluster.spec import PipelineSpec
from beamstream.config import PipelineConfig
from beamstream.counters import Counters
from beamstream.processors.pipeline import States
from beamstream.runner import Runner
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub

__all__ = ["DaskChunkExecutor", "reprocess"]

log = logging.getLogger(__name__)

ChunkFn = Callable[[PipelineSpec, Chunk], Partial]


class MapBackend(Protocol):
    """What reprocessing needs of `beamstream.cluster.dask_backend.DaskBackend`."""

    def map_unordered(
        self, fn: Any, items: Any, *args: Any, retries: int = 2
    ) -> Iterator[tuple[int, Any]]: ...


class DaskChunkExecutor:
    """Process the chunks of an archived run and merge them in a tree fixed by chunk index.

    Each collect hands the runner the merge of the chunks completed so far (cumulative), so the
    final states do not depend on which chunk finished first.

    Parameters
    ----------
    chunks
        The chunks to process (indices ``0 .. len - 1``).
    backend
        A Dask backend, or None to process the chunks in this process.
    retries
        Retries of a failed chunk (Dask only).
    chunk_fn
        The chunk task (`process_chunk`; tests swap in one that kills its worker).
    """

    recorders: list = []

    def __init__(
        self,
        chunks: list[Chunk],
        backend: MapBackend | None = None,
        *,
        retries: int = 2,
        chunk_fn: ChunkFn = process_chunk,
    ):
        self.chunks = chunks
        self.backend = backend
        self.retries = retries
        self.chunk_fn = chunk_fn
        self.taken = 0
        self.chunks_done = 0
        self._counters = Counters()
        self._ids: list[np.ndarray] = []
        self._records: dict[int, list[dict[str, Any]]] = {}
        self._ready: list[dict[str, Any]] = []
        self._next_records = 0

    # -- executor interface -------------------------------------------------------------------
    def open(self, run: Runner) -> None:
        self.run = run
        self.spec = PipelineSpec.from_config(run.config)
        self.tree: MergeTree[States] | None = (
            MergeTree(len(self.chunks), run.pipeline.merge) if self.chunks else None
        )
        self._results = self._iter_results()

    def pump(self, deadline: float, limit: int | None) -> bool:
        while not self.run.interrupted():
            item = next(self._results, None)
            if item is None:
                return False
            self.add(*item)
            if time.monotonic() >= deadline:
                return True
        if self.run._stop.is_set():
            log.warning("stopped after %d of %d chunks", self.chunks_done, len(self.chunks))
        return True

    def collect(self) -> Partial | None:
        counters, self._counters = self._counters, Counters()
        ids, self._ids = self._ids, []
        records, self._ready = self._ready, []
        states = self._merged()
        return Partial(
            self.spec.fingerprint,
            states if states is not None else self.run.pipeline.empty_states(),
            counters,
            np.concatenate(ids) if ids else np.zeros(0, np.uint64),
            records,
            cumulative=states is not None,
        )

    def close(self) -> Partial | None:
        if not hasattr(self, "_results"):  # never opened
            return None
        self._results.close()  # cancels the chunks not yet done
        return self.collect()

    def pending(self) -> Counters | None:
        return self._counters

    def info(self) -> dict[str, Any]:
        return {"chunks_done": self.chunks_done, "chunks_total": len(self.chunks)}

    # -- chunks -------------------------------------------------------------------------------
    def _iter_results(self) -> Iterator[tuple[int, Partial]]:
        if self.backend is None:
            for c in self.chunks:
                yield c.index, self.chunk_fn(self.spec, c)
        else:
            yield from self.backend.map_unordered(
                self.chunk_fn, self.chunks, self.spec, retries=self.retries
            )

    def add(self, index: int, part: Partial) -> None:
        """Add one chunk's result: states into the tree, counters, records in chunk order."""
        check_version(self.spec.fingerprint, part, f"chunk {index}:")
        assert self.tree is not None
        self.tree.add(index, part.states)
        self._counters = self._counters.merge(part.counters)
        self._ids.append(part.train_ids)
        self.taken += part.counters.received
        self.chunks_done += 1
        self._records[index] = part.records
        while self._next_records in self._records:
            self._ready += self._records.pop(self._next_records)
            self._next_records += 1

    def _merged(self) -> States | None:
        """The merge of every chunk so far (the tree's root once complete), or None."""
        if self.tree is None:
            return None
        if self.tree.complete:
            return self.tree.root()
        parts = self.tree.frontier()
        if not parts:
            return None
        total = parts[0]
        for p in parts[1:]:
            total = self.run.pipeline.merge(total, p)
        return total


def reprocess(
    config: PipelineConfig,
    path: str,
    *,
    backend: MapBackend | None = None,
    trains_per_chunk: int = 100,
    sinks: Iterable[Sink] = (),
    hub: Hub | None = None,
    status_out: TextIO | None = sys.stderr,
    format: str | None = None,
    trains: str | None = None,
    retries: int = 2,
    chunk_fn: ChunkFn = process_chunk,
    **reader_options: Any,
) -> dict[str, Any]:
    """Reprocess the archived run at ``path`` with ``config``; returns the final status.

    See the module docstring; ``format``, ``trains`` and ``reader_options`` select what is read
    (`beamstream.replay.open_reader`).
    """
    chunks = plan_chunks(path, trains_per_chunk, format, trains, **reader_options)
    executor = DaskChunkExecutor(chunks, backend, retries=retries, chunk_fn=chunk_fn)
    # every selected train: the live limits of [run] (trains, duration) do not apply
    config = replace(config, run=replace(config.run, trains=None, duration=None))
    runner = Runner(config, executor, sinks, hub=hub, status_out=status_out)
    return runner.run()
