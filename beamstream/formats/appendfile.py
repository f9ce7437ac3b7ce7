"""`AppendFile`: an HDF5 file of extendible datasets, appended to while readers watch (SWMR).

HDF5's single-writer/multiple-reader mode lets h5py or silx read a file while it grows, and keeps
the file consistent at every moment: after a ``kill -9`` of the writer it still opens (with
``swmr=True``; `beamstream.formats.h5layout.open_h5` does that). SWMR forbids creating datasets or
attributes once it is on, so a dataset that appears late (a new record key) is created by closing
the file, reopening it without SWMR for that one change, and switching SWMR back on. Readers
should re-open the file to see datasets created after they opened it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = ["AppendFile", "broken_files"]
#: files abandoned after a write error: HDF5 can neither flush nor close them (closing one
#: makes the library retry the failed writes, and can crash it at exit); kept open until exit
_BROKEN: list[h5py.File] = []


def broken_files() -> list[str]:
    """Paths of the files abandoned after a write error in this process."""
    return [f.filename for f in _BROKEN]


log = logging.getLogger(__name__)


class AppendFile:
    """Extendible datasets (along axis 0) in one HDF5 file, written in SWMR mode.

    Parameters
    ----------
    path
        The file to create (an existing file is replaced).
    attrs
        Root attributes, written when the file is created.
    swmr
        Switch SWMR mode on (default); off gives a plain HDF5 file (closed cleanly only).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        attrs: Mapping[str, Any] | None = None,
        swmr: bool = True,
    ):
        self.path = Path(path)
        self.swmr = swmr
        self._f: h5py.File | None = h5py.File(self.path, "w", libver="latest", track_order=True)
        for k, v in (attrs or {}).items():
            self._f.attrs[k] = v
        self._swmr_on = False

    @property
    def file(self) -> h5py.File:
        if self._f is None:
            raise ValueError(f"{self.path}: closed")
        return self._f

    def __contains__(self, name: str) -> bool:
        return name in self.file

    def __getitem__(self, name: str) -> h5py.Dataset:
        return self.file[name]

    def create(
        self,
        specs: Mapping[str, tuple[Any, ...]],
        rows: int = 0,
        chunk_rows: int = 64,
        compression: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Create extendible datasets ``{name: (inner shape, dtype, fill value[, chunk rows])}``.

        Chunks hold ``chunk rows`` rows (default ``chunk_rows``, at most ~4 MiB unless the
        chunk rows are given). Each starts with ``rows`` rows of its fill value (back-filling
        rows written before it existed). ``attrs`` gives attributes per dataset name.
        """
        if not specs:
            return
        self._suspend_swmr()
        f = self.file
        for name, spec in specs.items():
            shape, dtype, fill = spec[:3]
            shape = tuple(int(s) for s in shape)
            row_bytes = max(1, int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
            if len(spec) > 3:
                per_chunk = max(1, int(spec[3]))
            else:
                per_chunk = max(1, min(chunk_rows, (1 << 22) // row_bytes))  # up to ~4 MiB
            kw = dict(compression or {}) if shape and row_bytes > 4096 else {}
            ds = f.create_dataset(
                name,
                shape=(rows, *shape),
                maxshape=(None, *shape),
                chunks=(per_chunk, *shape),
                dtype=dtype,
                fillvalue=fill,
                **kw,
            )
            for k, v in (attrs or {}).get(name, {}).items():
                ds.attrs[k] = v
        self._resume_swmr()

    def set_attrs(self, name: str, attrs: Mapping[str, Any]) -> None:
        """Set attributes of an object (or ``"/"``); reopens the file without SWMR for it."""
        if not attrs:
            return
        self._suspend_swmr()
        for k, v in attrs.items():
            self.file[name].attrs[k] = v
        self._resume_swmr()

    def extend(self, name: str, block: np.ndarray) -> int:
        """Append rows to a dataset; returns the index of the first new row."""
        ds = self.file[name]
        n0 = ds.shape[0]
        if len(block):
            ds.resize(n0 + len(block), axis=0)
            ds[n0:] = block
        return n0

    def resize(self, name: str, rows: int) -> None:
        """Grow a dataset to ``rows`` rows (new rows hold the fill value)."""
        ds = self.file[name]
        if ds.shape[0] < rows:
            ds.resize(rows, axis=0)

    def flush(self) -> None:
        """Make everything appended so far visible to readers (and durable against a kill)."""
        f = self.file
        if self._swmr_on:
            for obj in f.values():
                if isinstance(obj, h5py.Dataset):
                    obj.flush()
        f.flush()

    def abandon(self) -> None:
        """Give the file up after a write error (the rows flushed before it stay readable:
        readers trust only complete rows). It is never closed (see `broken_files`)."""
        f, self._f = self._f, None
        if f is None:
            return
        _BROKEN.append(f)  # never closed: HDF5 cannot flush it
        log.warning("%s: abandoned after a write error", self.path)

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            self._f.close()
            self._f = None

    # -- SWMR switching -----------------------------------------------------------------------
    def _suspend_swmr(self) -> None:
        if not self._swmr_on:
            return
        self.file.close()
        self._f = _reopen_for_write(self.path)
        self._swmr_on = False

    def _resume_swmr(self) -> None:
        if self.swmr and not self._swmr_on:
            self.file.flush()
            self.file.swmr_mode = True
            self._swmr_on = True


def _reopen_for_write(path: Path, patience: float = 2.0) -> h5py.File:
    """Reopen ``path`` read-write; a reader holding HDF5's file lock delays, never fails, this.

    Readers (h5py, silx) opened in SWMR mode take a lock that blocks a non-SWMR writer. We retry
    for ``patience`` seconds (a reader that just polls closes the file quickly), then open
    without file locking: the one metadata change then races a long-lived reader, which sees the
    new dataset after re-opening (as the module docs say).
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            return h5py.File(path, "a", libver="latest")
        except BlockingIOError:
            if time.monotonic() >= deadline:
                log.warning(
                    "%s: held open by a reader; adding a dataset without file locking", path
                )
                return h5py.File(path, "a", libver="latest", locking=False)
            time.sleep(0.02)
