"""Train chunks of an archived run, the per-chunk task, and the fixed merge tree over chunks.

A `Chunk` names a file and a slice of its train positions; a worker opens the file itself
(`beamstream.replay.open_reader`) and reads only that slice. `MergeTree` merges chunk results in
a tree fixed by the chunk indices, whatever order they complete in, so a float result is
bit-identical from run to run and to an in-process run over the same chunking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from beamstream.accumulation import Accumulation, Partial
from beamstream.cluster.spec import PipelineSpec, borrowed_pipeline
from beamstream.replay import open_reader, parse_trains
from beamstream.replay.select import TrainRange

__all__ = ["Chunk", "plan_chunks", "process_chunk", "MergeTree"]

T = TypeVar("T")


@dataclass(frozen=True)
class Chunk:
    """Train positions ``start:stop:step`` of ``path`` (chunk number ``index`` of the run)."""

    index: int
    path: str
    format: str
    start: int
    stop: int
    step: int = 1
    options: tuple[tuple[str, Any], ...] = ()

    def __len__(self) -> int:
        return len(range(self.start, self.stop, self.step))

    def open(self) -> Any:
        """A reader of this chunk's trains only."""
        sel = TrainRange(self.start, self.stop, self.step)
        return open_reader(self.path, self.format, trains=sel, **dict(self.options))


def plan_chunks(
    path: str | Path,
    trains_per_chunk: int,
    format: str | None = None,
    trains: str | None = None,
    **options: Any,
) -> list[Chunk]:
    """Split the selected trains of ``path`` into chunks of ``trains_per_chunk`` trains.

    ``trains`` selects positions (``START:STOP:STEP``) or train ids (``id:START:STOP`` of a file
    whose ids increase); ``options`` go to the reader (e.g. ``stack_modules``).

    Raises
    ------
    ValueError
        For a selection that is not evenly spaced in the file (it cannot be chunked).
    """
    if trains_per_chunk < 1:
        raise ValueError(f"--trains-per-chunk: expected a positive integer, got {trains_per_chunk}")
    with open_reader(path, format, trains=parse_trains(trains), **options) as reader:
        pos = np.asarray(reader.positions(), np.int64)
        fmt = reader.format
    if len(pos) == 0:
        return []
    steps = np.unique(np.diff(pos))
    if len(steps) > 1 or (len(steps) and steps[0] <= 0):
        raise ValueError(
            f"--trains {trains!r}: the selected trains of {path} are not evenly spaced in the "
            "file; select by position (START:STOP:STEP) instead"
        )
    step = int(steps[0]) if len(steps) else 1
    opts = tuple(sorted(options.items()))
    out = []
    for i, lo in enumerate(range(0, len(pos), trains_per_chunk)):
        part = pos[lo : lo + trains_per_chunk]
        out.append(Chunk(i, str(path), fmt, int(part[0]), int(part[-1]) + 1, step, opts))
    return out


def process_chunk(spec: PipelineSpec, chunk: Chunk) -> Partial:
    """Task: the pipeline of ``spec`` over the trains of ``chunk``, as one `Partial`.

    ``sources`` of the result holds ``{"chunk-N": {"trains": n, "skipped": unreadable}}``.
    """
    with borrowed_pipeline(spec) as pipeline, chunk.open() as reader:
        acc = Accumulation(pipeline, spec.fingerprint, max_records=len(chunk) or 1)
        for train in reader:
            acc.process(train)
        return acc.take({f"chunk-{chunk.index}": {"trains": len(chunk), "skipped": reader.skipped}})


class MergeTree(Generic[T]):
    """Merge ``n`` leaves in a tree fixed by their indices, as they arrive in any order.

    Node ``(level, j)`` covers leaves ``j * 2**level`` up to ``(j + 1) * 2**level`` (fewer at
    the right edge); it is ``merge(left child, right child)``, or its left child when it has no
    right one. The result (`root`) depends on the leaves only, never on their arrival order.

    Parameters
    ----------
    n
        Number of leaves.
    merge
        ``merge(a, b) -> merged`` (``a`` covers the lower indices).
    """

    def __init__(self, n: int, merge: Callable[[T, T], T]):
        if n < 1:
            raise ValueError("a merge tree needs at least one leaf")
        self.n = n
        self.merge = merge
        self.nodes: dict[tuple[int, int], T] = {}
        self.height = max(0, int(np.ceil(np.log2(n))))

    def add(self, index: int, value: T) -> None:
        """Add leaf ``index`` and merge upwards as far as the siblings are there."""
        if not 0 <= index < self.n:
            raise IndexError(f"leaf {index} of a tree of {self.n}")
        level, j = 0, index
        if (level, j) in self.nodes:
            raise ValueError(f"leaf {index} added twice")
        self.nodes[(level, j)] = value
        while level < self.height:
            sib = j ^ 1
            if (sib << level) >= self.n:  # no right sibling at the edge: pass up
                merged = self.nodes.pop((level, j))
            elif (level, sib) in self.nodes:
                left, right = sorted((j, sib))
                merged = self.merge(self.nodes.pop((level, left)), self.nodes.pop((level, right)))
            else:
                return
            level, j = level + 1, j >> 1
            self.nodes[(level, j)] = merged

    @property
    def complete(self) -> bool:
        return (self.height, 0) in self.nodes

    def root(self) -> T:
        """The merge of every leaf (KeyError until all were added)."""
        return self.nodes[(self.height, 0)]

    def frontier(self) -> list[T]:
        """The merged nodes present now, in leaf order (their merge is everything so far)."""
        return [self.nodes[k] for k in sorted(self.nodes, key=lambda k: k[1] << k[0])]
