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

from beamstream.formats.epochs import epoch_summary
from beamstream.formats.h5layout import (
    compression_kwargs,
)
from beamstream.formats.results_writer import segment_from_status, write_results_file
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub, Snapshot
from beamstream.sinks.records_out import RecordsOutput
from beamstream.sinks.writeguard import WriteGuard, remove_stale_temporaries

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
    final_retry
        Seconds the final snapshot's write is retried when it fails (e.g. a full disk).

    Write errors (a full disk) are counted by reason, logged rate-limited and retried with the
    next snapshot; the previous results file stays complete (see `health`).
    """

    name = "hdf5"

    def __init__(
        self,
        path: str = "results.h5",
        records: bool = True,
        compression: str | None = None,
        fsync: bool = True,
        min_interval: float = 0.0,
        final_retry: float = 10.0,
    ):
        super().__init__(path=path, records=records, compression=compression)
        self.path = Path(path)
        self.records = bool(records)
        self.compression = compression_kwargs(compression)
        self.fsync = bool(fsync)
        self.min_interval = float(min_interval)
        self._segments: list[dict[str, Any]] = []
        self._last_write = 0.0
        self._config_text = ""
        self._config_path = ""
        self._epochs: list[dict[str, Any]] = []  # closed epochs (before resets)
        self.guard = WriteGuard(str(self.path), final_retry_s=float(final_retry))
        self._records = RecordsOutput(self.path)

    @property
    def records_missed(self) -> int:
        return self._records.missed

    def resume_from(
        self,
        segments: Sequence[Mapping[str, Any]],
        records_files: Sequence[str],
        records_rows: Sequence[int | None] = (),
        closed_epochs: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Continue the provenance of a resumed file (its earlier segments and records files,
        with the rows of each that its states hold, and its closed epochs)."""
        self._epochs = [dict(e) for e in closed_epochs]
        self._segments = [dict(s) for s in segments]
        self._records.resume(records_files, records_rows)

    def open(self, hub: Hub) -> None:
        self._config_text = hub.config_text
        self._config_path = str(hub.info.get("config_path", ""))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path)
        hub.info["hdf5_path"] = str(self.path)
        if self.records:
            self._records.open()

    def _collect_epochs(self) -> None:
        if self._hub is None:
            return
        known = {e["epoch"] for e in self._epochs}
        for snap in self._hub.closed_epochs():
            if snap.epoch not in known:
                self._epochs.append(epoch_summary(snap))

    def write(self, snapshot: Snapshot) -> None:
        if self.records and self._hub is not None:
            self._records.append(self._hub, snapshot)
        self._collect_epochs()
        now = time.monotonic()
        if not snapshot.final and now - self._last_write < self.min_interval:
            return
        self._last_write = now
        rec = self._records
        segment = segment_from_status(snapshot.status, snapshot.time, (rec.files or [""])[-1])
        segment["records_rows"] = dict(rec.rows)
        extra = {
            "records_missed": rec.missed,
            "records_lost": rec.lost,
            "records_rows": rec.writer.rows if rec.writer else 0,
            "records_warnings": dict(rec.writer.warnings) if rec.writer else {},
            "write_errors": dict(self.guard.errors + rec.guard.errors),
            "status": snapshot.status,
        }
        versions = snapshot.versions
        running = [v for v in versions if v.first_train_id is not None]
        self.guard.attempt(
            lambda: write_results_file(
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
                records_files=rec.files,
                extra=extra,
                compression=self.compression,
                fsync=self.fsync,
                closed_epochs=self._epochs,
                versions=versions,
                closed=snapshot.closed,
            ),
            final=snapshot.final,
        )

    def health(self) -> dict[str, Any]:
        """Write errors by reason, and whether the final snapshot reached the file."""
        return {
            "path": str(self.path),
            "write_errors": dict(self.guard.errors + self._records.guard.errors),
            "final_written": self.guard.final_written,
            "records_missed": self._records.missed,
            "records_lost": self._records.lost,
        }

    def close(self) -> None:
        self._records.close()
