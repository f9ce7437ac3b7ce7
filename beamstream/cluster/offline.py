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
from typing import Any, Protocol, TextIO

from beamstream.cluster.chunks import Chunk, MergeTree, plan_chunks, process_chunk
from beamstream.cluster.partial import ConfigVersionError, Partial
from beamstream.cluster.spec import PipelineSpec
from beamstream.cluster.status import ClusterStatus
from beamstream.config import PipelineConfig
from beamstream.processors.pipeline import States
from beamstream.runner import Runner
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub

__all__ = ["Reprocessor", "reprocess"]

log = logging.getLogger(__name__)

ChunkFn = Callable[[PipelineSpec, Chunk], Partial]


class MapBackend(Protocol):
    """What reprocessing needs of `beamstream.cluster.dask_backend.DaskBackend`."""

    def map_unordered(
        self, fn: Any, items: Any, *args: Any, retries: int = 2
    ) -> Iterator[tuple[int, Any]]: ...


class Reprocessor(Runner):
    """Publishes the growing merge of chunk results like a `Runner` publishes a live run.

    Parameters
    ----------
    config
        The pipeline.
    chunks
        The chunks to process (indices ``0 .. len - 1``).
    backend
        A Dask backend, or None to process the chunks in this process.
    sinks, hub, status_out
        As for `Runner`.
    retries
        Retries of a failed chunk (Dask only).
    chunk_fn
        The chunk task (`process_chunk`; tests swap in one that kills its worker).
    """

    def __init__(
        self,
        config: PipelineConfig,
        chunks: list[Chunk],
        backend: MapBackend | None = None,
        sinks: Iterable[Sink] = (),
        hub: Hub | None = None,
        status_out: TextIO | None = sys.stderr,
        retries: int = 2,
        chunk_fn: ChunkFn = process_chunk,
    ):
        super().__init__(config, sinks, hub, None, status_out)
        self.chunks = chunks
        self.backend = backend
        self.retries = retries
        self.chunk_fn = chunk_fn
        self.spec = PipelineSpec.from_config(config)
        self.cstatus = ClusterStatus()
        self.cstatus.chunks_total = len(chunks)
        self.tree: MergeTree[States] | None = (
            MergeTree(len(chunks), self.pipeline.merge) if chunks else None
        )
        self._records: dict[int, list[dict[str, Any]]] = {}
        self._next_records = 0

    def run(self, trains: int | None = None, duration: float | None = None, source: Any = None):
        """Process every chunk; returns the final status (``trains``/``duration`` unused)."""
        for sink in self.sinks:
            sink.start(self.hub)
        restore = self._install_signal_handlers()
        try:
            self._loop_chunks()
        finally:
            restore()
            if self.tree is not None and self.tree.complete:
                self.states = self.tree.root()
            else:
                self._show_frontier()
            self.publish(final=True)
            self.hub.close()
            for sink in self.sinks:
                sink.join(timeout=60)
        return self.status_dict()

    def _results(self) -> Iterator[tuple[int, Partial]]:
        if self.backend is None:
            for c in self.chunks:
                yield c.index, self.chunk_fn(self.spec, c)
        else:
            yield from self.backend.map_unordered(
                self.chunk_fn, self.chunks, self.spec, retries=self.retries
            )

    def _loop_chunks(self) -> None:
        run = self.config.run
        next_snapshot = time.monotonic() + run.interval
        next_status = time.monotonic() + run.status_interval
        for index, part in self._results():
            self.add(index, part)
            now = time.monotonic()
            if now >= next_snapshot:
                self._show_frontier()
                self.publish()
                next_snapshot = now + run.interval
            if now >= next_status:
                self._print_status()
                next_status = now + run.status_interval
            if self._stop.is_set():
                done, total = self.cstatus.chunks_done, len(self.chunks)
                log.warning("stopped after %d of %d chunks", done, total)
                return

    def add(self, index: int, part: Partial) -> None:
        """Add one chunk's result: states into the tree, counters, records in chunk order."""
        if part.fingerprint != self.spec.fingerprint:
            raise ConfigVersionError(
                f"chunk {index}: states of config version {part.fingerprint}, not "
                f"{self.spec.fingerprint}: never merged"
            )
        assert self.tree is not None
        self.tree.add(index, part.states)
        self.cstatus.add(part)
        self.cstatus.chunks_done += 1
        self._records[index] = part.records
        while self._next_records in self._records:
            for rec in self._records.pop(self._next_records):
                self.hub.add_record(rec)
            self._next_records += 1

    def _show_frontier(self) -> None:
        """Set ``states`` to the merge of everything so far (for a progress snapshot)."""
        if self.tree is None:
            return
        parts = self.tree.frontier()
        if parts:
            total = parts[0]
            for p in parts[1:]:
                total = self.pipeline.merge(total, p)
            self.states = total

    def status_dict(self) -> dict[str, Any]:
        status = self.cstatus.snapshot()
        status["epoch"] = self.epoch
        status.update(self.hub.info)
        return status


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
    driver = Reprocessor(config, chunks, backend, sinks, hub, status_out, retries, chunk_fn)
    return driver.run()
