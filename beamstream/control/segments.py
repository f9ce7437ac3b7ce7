"""Closed segments: the accumulation of a run up to a new-segment version or a reset.

States of different segments never merge. When a segment closes, its states (moved, not copied)
and the pipeline that made them are kept; its results are finalized lazily, once, by the first
sink that asks. In a results file each closed segment is ``/entry/control/segments/NNNNN`` with
``results`` and ``states`` groups laid out as ``/entry/results`` and ``/entry/states``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from beamstream.control.versions import Version, write_versions
from beamstream.formats.h5layout import h5name, iter_results, read_result, read_tree, write_result
from beamstream.processors.base import Result

__all__ = ["ClosedSegment", "write_control", "read_segments"]


@dataclass
class ClosedSegment:
    """One closed segment: index, train range, versions, states and how to finalize them."""

    index: int
    versions: tuple[int, ...]
    first_train_id: int | None
    last_train_id: int | None
    processed: int
    states: dict[str, Any]
    pipeline: Any  # the `Pipeline` that made the states (its finalize)
    _results: dict[str, dict[str, Result]] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def results(self) -> dict[str, dict[str, Result]]:
        with self._lock:
            if self._results is None:
                self._results = self.pipeline.finalize(self.states)
            return self._results


def write_control(
    entry: h5py.Group,
    versions: Iterable[Version],
    closed: Sequence[ClosedSegment],
    current_segment: int,
    write_state: Any,
    compression: dict[str, Any] | None = None,
) -> None:
    """``/entry/control``: the version log and every closed segment's results and states.

    ``write_state(group, name, state)`` stores one state (the results sink's own writer).
    """
    control = write_versions(entry, versions)
    control.attrs["current_segment"] = np.int64(current_segment)
    segs = control.create_group("segments", track_order=True)
    segs.attrs["NX_class"] = "NXcollection"
    for seg in closed:
        g = segs.create_group(f"{seg.index:05d}", track_order=True)
        g.attrs["NX_class"] = "NXcollection"
        g.attrs["index"] = np.int64(seg.index)
        g.attrs["versions"] = np.asarray(seg.versions, np.int64)
        g.attrs["processed"] = np.int64(seg.processed)
        for key in ("first_train_id", "last_train_id"):
            if getattr(seg, key) is not None:
                g.attrs[key] = np.uint64(getattr(seg, key))
        res = g.create_group("results", track_order=True)
        for proc, named in seg.results.items():
            pg = res.create_group(h5name(proc), track_order=True)
            pg.attrs["NX_class"] = "NXprocess"
            for r in named.values():
                write_result(pg, r, compression)
        st = g.create_group("states", track_order=True)
        for name, state in seg.states.items():
            write_state(st, name, state)


def read_segments(path: str) -> list[dict[str, Any]]:
    """Every closed segment of a results file: attributes, ``results`` (by processor, by name)
    and ``states`` (plain trees)."""
    out = []
    with h5py.File(path, "r") as f:
        segs = f.get("entry/control/segments")
        for name in sorted(segs or ()):
            g = segs[name]
            item: dict[str, Any] = {k: _py(v) for k, v in g.attrs.items() if k != "NX_class"}
            item["results"] = {
                proc: {r.name: r for r in (read_result(x) for x in iter_results(pg))}
                for proc, pg in g["results"].items()
            }
            item["states"] = {n: read_tree(s) for n, s in g["states"].items()}
            out.append(item)
    return out


def _py(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v.item() if isinstance(v, np.generic) else v
