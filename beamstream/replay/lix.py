"""`LiXReader`: LiX/py4xs-style HDF5 (``<sample>/primary/data/<detector>`` frame stacks).

The layout (bluesky's HDF5 export as used at NSLS-II LiX, read by py4xs ``h5xs``): each sample is a
top-level group; ``<sample>/primary/data/<name>`` holds one row per event and
``<sample>/primary/timestamps/<name>`` the Unix time of each row. Rows of 2-D images
(``(events, y, x)`` or ``(events, frames, y, x)``) become a detector source ``<name>`` with key
``image.data`` shaped ``(frame, y, x)``; 1-D columns (motor positions, monitor counts) become scalar
keys, and other arrays array keys, of the source ``primary``, which also carries ``sample``. One
event is one train; train ids count from ``first_train_id`` across the samples in file order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from beamstream.formats.h5layout import open_h5
from beamstream.replay.base import FormatError, Reader
from beamstream.replay.select import Include, TrainRange, wanted, wanted_source
from beamstream.streamer.train import Train

__all__ = ["LiXReader", "is_lix", "SCALARS"]

#: source name of the per-event scalar columns
SCALARS = "primary"


def is_lix(f: h5py.File) -> bool:
    return any(isinstance(g, h5py.Group) and "primary/data" in g for g in f.values())


class LiXReader(Reader):
    """Events of a LiX/py4xs HDF5 file as trains.

    Parameters
    ----------
    path
        The HDF5 file.
    trains, include
        Selection (see `Reader`).
    first_train_id
        Train id of the first event.
    samples
        Only these samples (default: all, in file order).
    """

    format = "lix"
    detect_order = 3

    @classmethod
    def can_open(cls, path: Path, h5: Any = None) -> bool:
        return h5 is not None and is_lix(h5)

    def __init__(
        self,
        path: str | Path,
        trains: str | TrainRange | None = None,
        include: Sequence[str | Include] | None = None,
        first_train_id: int = 1,
        samples: Sequence[str] | None = None,
    ):
        super().__init__(path, trains, include)
        self._f = open_h5(self.path)
        try:
            names = [
                n for n, g in self._f.items() if isinstance(g, h5py.Group) and "primary/data" in g
            ]
            if not names:
                raise FormatError(
                    f"{self.path}: no LiX/py4xs data (expected <sample>/primary/data/<detector> "
                    "groups)"
                )
            if samples is not None:
                missing = sorted(set(samples) - set(names))
                if missing:
                    raise FormatError(f"{self.path}: no sample {missing[0]!r} (has {names})")
                names = [n for n in names if n in samples]
            self._rows: list[tuple[str, int]] = []
            self._cols: dict[str, dict[str, h5py.Dataset]] = {}
            self._stamps: dict[str, np.ndarray] = {}
            for name in names:
                self._add_sample(name)
        except BaseException:
            self._f.close()
            raise
        self.train_ids = np.arange(first_train_id, first_train_id + len(self._rows), dtype=np.int64)

    def _add_sample(self, name: str) -> None:
        prim = self._f[name]["primary"]
        cols = {k: d for k, d in prim["data"].items() if isinstance(d, h5py.Dataset) and d.ndim}
        if not cols:
            return
        n = min(d.shape[0] for d in cols.values())
        stamps = np.full(n, np.nan)
        ts_group = prim.get("timestamps")
        if ts_group is not None:
            images = [k for k, d in cols.items() if d.ndim >= 3]
            for k in images + [k for k in cols if k not in images]:
                if k in ts_group and ts_group[k].shape[0] >= n:
                    stamps = np.asarray(ts_group[k][:n], dtype=np.float64)
                    break
        self._cols[name] = cols
        self._stamps[name] = stamps
        self._rows += [(name, i) for i in range(n)]

    def _read(self, pos: int) -> Train | None:
        sample, i = self._rows[pos]
        data: dict[str, dict[str, Any]] = {}
        dims: dict[str, dict[str, tuple[str, ...]]] = {}
        scalars: dict[str, Any] = {"sample": sample}
        for key, ds in self._cols[sample].items():
            if ds.ndim >= 3:
                if not wanted(self.includes, key, "image.data"):
                    continue
                frames = ds[i]
                if frames.ndim == 2:
                    frames = frames[np.newaxis]
                data[key] = {"image.data": frames}
                if frames.ndim == 3:
                    dims[key] = {"image.data": ("frame", "y", "x")}
            elif wanted(self.includes, SCALARS, key):
                value = ds[i]
                scalars[key] = value.item() if isinstance(value, np.generic) else value
        if wanted_source(self.includes, SCALARS):
            data[SCALARS] = scalars
        ts = self._stamps[sample][i]
        tid = int(self.train_ids[pos])
        meta = {src: {"source": src, "timestamp.tid": tid} for src in data}
        return Train(tid, None if np.isnan(ts) else float(ts), data, meta, dims)

    def close(self) -> None:
        self._f.close()
