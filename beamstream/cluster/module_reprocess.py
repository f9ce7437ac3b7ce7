"""Offline reprocessing of a multi-module detector run split by module group and by train chunk.

Every (module group, chunk) pair is one task (`beamstream.cluster.chunks.process_chunk` with the
group's pipeline): a worker reads only its chunk's trains and, of the detector, only its modules
(plus the other sources, e.g. XGM and delay, which every group needs). The chunks of a group
merge in the fixed tree of `MergeTree`; the groups then merge over the module axis
(`beamstream.cluster.modules.merge_over_modules`), so the result equals the same chunking run in
one process, bit for bit for the per-pixel sums. Plain Python unless a Dask backend is given.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from beamstream.accumulation import Partial, combine
from beamstream.cluster.chunks import Chunk, MergeTree, plan_chunks, process_chunk
from beamstream.cluster.modules import config_for_modules, merge_over_modules, module_groups
from beamstream.cluster.offline import DaskChunkExecutor
from beamstream.cluster.spec import PipelineSpec
from beamstream.config import PipelineConfig
from beamstream.processors.pipeline import Pipeline

__all__ = ["reprocess_by_module", "module_task", "ModuleChunkExecutor"]


def module_task(item: tuple[PipelineSpec, Chunk]) -> Partial:
    """Task: one module group's pipeline over one chunk."""
    spec, chunk = item
    return process_chunk(spec, chunk)


def reprocess_by_module(
    config: PipelineConfig,
    path: str,
    groups: int,
    *,
    backend: Any = None,
    trains_per_chunk: int = 100,
    retries: int = 2,
    **reader_options: Any,
) -> tuple[Partial, list[tuple[int, ...]]]:
    """The run at ``path`` through ``config``, split into ``groups`` module groups and chunks.

    Returns
    -------
    tuple
        A `Partial` whose states are those of the whole pipeline (counters of the first group:
        every group takes the same trains) and the module groups.
    """
    mgroups = module_groups(config, groups)
    chunks = plan_chunks(path, trains_per_chunk, **reader_options)
    if not chunks:
        raise ValueError(f"{path}: no trains selected")
    specs = [PipelineSpec.from_config(config_for_modules(config, g)) for g in mgroups]
    items = [(spec, chunk) for spec in specs for chunk in chunks]
    pipelines = [Pipeline(spec.config()) for spec in specs]
    trees = [MergeTree(len(chunks), lambda a, b, p=p: combine(p, a, b)) for p in pipelines]
    for index, part in _results(items, backend, retries):
        g, c = divmod(index, len(chunks))
        trees[g].add(c, part)
    roots = [t.root() for t in trees]
    states = merge_over_modules(
        Pipeline(config), [(g, r.states) for g, r in zip(mgroups, roots, strict=True)]
    )
    first = roots[0]  # every group took the same trains: its counters are the run's
    merged = Partial(first.fingerprint, states, first.counters, first.train_ids, first.records)
    return merged, mgroups


def _results(
    items: Sequence[tuple[PipelineSpec, Chunk]], backend: Any, retries: int
) -> Iterator[tuple[int, Partial]]:
    if backend is None:
        for i, item in enumerate(items):
            yield i, module_task(item)
        return
    yield from backend.map_unordered(module_task, items, retries=retries, name="beamstream-module")


class ModuleChunkExecutor(DaskChunkExecutor):
    """`DaskChunkExecutor` over (module group, chunk) pairs: ``beamstream reprocess
    --split-modules K``.

    Each group's chunks merge in their own fixed tree; once every group is complete they merge
    over the module axis. Counters and records come from the first group (every group takes the
    same trains); snapshots before the end hold nothing yet.
    """

    def __init__(self, chunks: list[Chunk], groups: int, backend: Any = None, *, retries: int = 2):
        super().__init__(chunks, backend, retries=retries, chunk_fn=process_chunk)
        self.groups = groups

    def open(self, run: Any) -> None:
        super().open(run)
        self.mgroups = module_groups(run.config, self.groups)
        self.group_specs = [
            PipelineSpec.from_config(config_for_modules(run.config, g)) for g in self.mgroups
        ]
        pipelines = [Pipeline(s.config()) for s in self.group_specs]
        self.trees = [MergeTree(len(self.chunks), p.merge) for p in pipelines]
        self.items = [(s, c) for s in self.group_specs for c in self.chunks]

    def info(self) -> dict[str, Any]:
        return {"chunks_done": self.chunks_done, "chunks_total": len(self.items)}

    def _iter_results(self) -> Iterator[tuple[int, Partial]]:
        yield from _results(self.items, self.backend, self.retries)

    def add(self, index: int, part: Partial) -> None:
        g, c = divmod(index, len(self.chunks))
        self.trees[g].add(c, part.states)
        self.chunks_done += 1
        if g == 0:  # the trains' counters and records, once
            self._counters = self._counters.merge(part.counters)
            self._ids.append(part.train_ids)
            self.taken += part.counters.received
            self._records[c] = part.records
            while self._next_records in self._records:
                self._ready += self._records.pop(self._next_records)
                self._next_records += 1

    def _merged(self) -> Any:
        if not self.chunks or not all(t.complete for t in self.trees):
            return None
        roots = [(g, t.root()) for g, t in zip(self.mgroups, self.trees, strict=True)]
        return merge_over_modules(self.run.pipeline, roots)
