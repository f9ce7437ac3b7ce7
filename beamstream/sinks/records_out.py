"""`RecordsOutput`: the hdf5 sink's per-train records files, robust to write errors.

Records go to ``<stem>.records.h5`` (SWMR, `beamstream.formats.records.RecordsWriter`). Each
snapshot's records are appended up to that snapshot's trains, and `rows` tells how many rows of
each records file the snapshot's states account for (stored in the results file, so readers never
see rows twice after a resume). A write error (a full disk) abandons the file: HDF5 leaves it
truncated, so its rows count as lost and readers skip it; a new file (``.records-2.h5``, ...) is
started after a back-off (5 s, doubling up to 5 min) while the hub keeps the records meanwhile
(those that fall out of its bounded buffer are counted as missed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from beamstream.formats.appendfile import AppendFile
from beamstream.formats.records import RecordsWriter
from beamstream.formats.results_writer import records_path_for
from beamstream.sinks.hub import Hub, Snapshot
from beamstream.sinks.writeguard import WriteGuard

__all__ = ["RecordsOutput"]

log = logging.getLogger(__name__)

_RETRY_S = 5.0
_RETRY_MAX_S = 300.0
FORMAT = "beamstream-records/2"


class RecordsOutput:
    """The records files of one results file (see the module doc)."""

    def __init__(self, results_path: Path):
        self.results_path = results_path
        self.files: list[str] = []  # names, relative to the results file's directory
        self.rows: dict[str, int] = {}  # rows each file holds for the states written
        self.missed = 0  # fell out of the hub's buffer before they were written
        self.lost = 0  # written to a file abandoned after a write error
        self.guard = WriteGuard(f"{results_path} records", final_retry_s=0.0)
        self._writer: RecordsWriter | None = None
        self._file: AppendFile | None = None
        self._seq = 0
        self._broken_at: float | None = None
        self._retry_s = _RETRY_S / 2

    @property
    def writer(self) -> RecordsWriter | None:
        return self._writer

    def resume(self, files: Sequence[str], rows: Sequence[int | None]) -> None:
        """Continue after the records files of a resumed results file."""
        self.files = list(files)
        for name, n in zip(self.files, rows, strict=False):
            if n is not None:
                self.rows[name] = int(n)

    def open(self) -> None:
        """Start a records file (a new one after a write error broke the previous one)."""
        taken = [str(self.results_path.parent / r) for r in self.files]
        rpath = records_path_for(self.results_path, taken)
        attrs = {"beamstream_format": FORMAT, "results_file": self.results_path.name}
        opened: list[AppendFile] = []
        if not self.guard.attempt(lambda: opened.append(AppendFile(rpath, attrs))):
            self._broken_at = time.monotonic()
            return
        self._file = opened[0]
        self._writer = RecordsWriter(self._file)
        self.files.append(rpath.name)
        self.rows[rpath.name] = 0
        self._broken_at = None

    def append(self, hub: Hub, snapshot: Snapshot) -> None:
        """Append the records of the trains in ``snapshot`` that are not written yet."""
        if self._writer is None:
            broken = self._broken_at
            waiting = broken is None or time.monotonic() - broken < self._retry_s
            if waiting and not snapshot.final:
                return
            self.open()
            if self._writer is None:
                return
        recs, seq, missed = hub.records_since(self._seq, upto=snapshot.records_seq)
        writer = self._writer
        if not self.guard.attempt(lambda: writer.append(recs)):
            self._abandon()
            return
        self._seq = seq
        self._retry_s = _RETRY_S / 2
        if missed:
            self.missed += missed
            log.warning("hdf5 sink fell behind: %d per-train records dropped", missed)
        self.rows[self.files[-1]] = writer.rows

    def _abandon(self) -> None:
        if self._writer is not None:
            self.lost += self._writer.rows
            self.rows[self.files[-1]] = 0
        if self._file is not None:
            self._file.abandon()
        self._file = self._writer = None
        self._broken_at = time.monotonic()
        self._retry_s = min(2 * self._retry_s, _RETRY_MAX_S)

    def close(self) -> None:
        if self._file is not None:
            if not self.guard.attempt(self._file.close):
                self._file.abandon()
            self._file = None
