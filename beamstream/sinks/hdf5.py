"""`HDF5Sink`: NeXus-style results file with config, provenance, states and per-train records.

Two files per run (see ``docs/hdf5.md``):

* ``PATH`` (e.g. ``results.h5``): results, accumulator states, config and provenance of the latest
  snapshot. Each snapshot is written whole to a temporary file that is renamed over ``PATH``
  (`beamstream.formats.h5layout.atomic_h5`), so a crash at any moment leaves the last completed
  snapshot, and every reader sees a complete, consistent one.
* ``PATH`` without ``.h5`` + ``.records.h5``: the per-train records, appended in SWMR mode so
  they can be read while the run goes on; ``/entry/records`` in the results file links to it.

Everything is written in the sink's own thread from the hub's snapshots: a slow disk only makes
the sink skip intermediate snapshots (the state of the latest one is always complete); per-train
records that fall out of the hub's bounded buffer before the sink reads them are counted
(``records_missed``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from beamstream.formats.appendfile import AppendFile
from beamstream.formats.h5layout import (
    compression_kwargs,
)
from beamstream.formats.records import RecordsWriter
from beamstream.formats.results_writer import (
    records_path_for,
    segment_from_status,
    write_results_file,
)
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub, Snapshot

__all__ = ["HDF5Sink"]

log = logging.getLogger(__name__)


class HDF5Sink(Sink):
    """Write results, states, config and provenance to ``path``; records to an SWMR file.

    Parameters
    ----------
    path
        The results file (replaced atomically at every snapshot).
    records
        Also write the per-train records (to ``<stem>.records.h5`` next to ``path``).
    compression
        For result arrays and records: ``none``, ``gzip``, ``lzf`` or an hdf5plugin filter
        (``lz4``, ``zstd``, ``bitshuffle``, ``blosc``).
    fsync
        fsync the results file before renaming it into place (survives power loss as well).
    min_interval
        Seconds between results-file writes at least (the final snapshot is always written);
        large states make each write expensive, so a long run may write less often.
    """

    name = "hdf5"

    def __init__(
        self,
        path: str = "results.h5",
        records: bool = True,
        compression: str | None = None,
        fsync: bool = True,
        min_interval: float = 0.0,
    ):
        super().__init__(path=path, records=records, compression=compression)
        self.path = Path(path)
        self.records = bool(records)
        self.compression = compression_kwargs(compression)
        self.fsync = bool(fsync)
        self.min_interval = float(min_interval)
        self.records_missed = 0
        self._segments: list[dict[str, Any]] = []
        self._records_files: list[str] = []
        self._writer: RecordsWriter | None = None
        self._file: AppendFile | None = None
        self._rec_seq = 0
        self._last_write = 0.0
        self._config_text = ""
        self._config_path = ""

    def resume_from(
        self, segments: Sequence[Mapping[str, Any]], records_files: Sequence[str]
    ) -> None:
        """Continue the provenance of a resumed file (its earlier segments and records files)."""
        self._segments = [dict(s) for s in segments]
        self._records_files = list(records_files)

    def open(self, hub: Hub) -> None:
        self._config_text = hub.config_text
        self._config_path = str(hub.info.get("config_path", ""))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        hub.info["hdf5_path"] = str(self.path)
        if self.records:
            taken = [str(self.path.parent / r) for r in self._records_files]
            rpath = records_path_for(self.path, taken)
            self._file = AppendFile(
                rpath, {"beamstream_format": "beamstream-records/2", "results_file": self.path.name}
            )
            self._writer = RecordsWriter(self._file)
            self._records_files.append(rpath.name)

    def write(self, snapshot: Snapshot) -> None:
        if self._writer is not None and self._hub is not None:
            recs, self._rec_seq, missed = self._hub.records_since(self._rec_seq)
            if missed:
                self.records_missed += missed
                log.warning("hdf5 sink fell behind: %d per-train records dropped", missed)
            self._writer.append(recs)
        now = time.monotonic()
        if not snapshot.final and now - self._last_write < self.min_interval:
            return
        self._last_write = now
        segment = segment_from_status(
            snapshot.status,
            snapshot.time,
            self._records_files[-1:] and self._records_files[-1] or "",
        )
        extra = {
            "records_missed": self.records_missed,
            "records_rows": self._writer.rows if self._writer else 0,
            "records_warnings": dict(self._writer.warnings) if self._writer else {},
            "status": snapshot.status,
        }
        versions = snapshot.versions
        running = [v for v in versions if v.first_train_id is not None]
        write_results_file(
            self.path,
            config_text=running[-1].config_text if running else self._config_text,
            config_path=self._config_path,
            results=snapshot.results,
            states=snapshot.states,
            segments=[*self._segments, segment],
            snapshot={
                "seq": snapshot.seq,
                "time": snapshot.time,
                "epoch": snapshot.epoch,
                "final": snapshot.final,
            },
            records_files=self._records_files,
            extra=extra,
            compression=self.compression,
            fsync=self.fsync,
            versions=versions,
            closed=snapshot.closed,
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
