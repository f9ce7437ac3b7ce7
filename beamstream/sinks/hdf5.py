"""`HDF5Sink`: NeXus-style results file with config, provenance, states and per-train records.

Two files per run (see ``docs/hdf5.md``):

* ``PATH`` (e.g. ``results.h5``): results, accumulator states, config and provenance of the latest
  snapshot. Each snapshot is written whole to a temporary file that is renamed over ``PATH``
  (`beamstream.sinks.h5layout.atomic_h5`), so a crash at any moment leaves the last completed
  snapshot, and every reader sees a complete, consistent one.
* ``PATH`` without ``.h5`` + ``.records.h5``: the per-train records, appended in SWMR mode so
  they can be read while the run goes on; ``/entry/records`` in the results file links to it.

Everything is written in the sink's own thread from the hub's snapshots: a slow disk only makes
the sink skip intermediate snapshots (the state of the latest one is always complete); per-train
records that fall out of the hub's bounded buffer before the sink reads them are counted
(``records_missed``).
"""

from __future__ import annotations

import collections
import logging
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import beamstream
from beamstream.processors.base import Result
from beamstream.sinks.base import Sink
from beamstream.sinks.epochs import epoch_summary, write_closed_epochs
from beamstream.sinks.h5layout import (
    atomic_h5,
    compression_kwargs,
    h5name,
    pipeline_fingerprint,
    to_json,
    write_result,
    write_tree,
)
from beamstream.sinks.hub import Hub, Snapshot
from beamstream.sinks.records_out import RecordsOutput, records_path_for
from beamstream.sinks.writeguard import WriteGuard, remove_stale_temporaries

__all__ = [
    "HDF5Sink",
    "write_results_file",
    "segment_from_status",
    "combine_segments",
    "records_path_for",
    "software_versions",
    "FORMAT",
]

log = logging.getLogger(__name__)

#: ``/`` attribute ``beamstream_format`` of results files
FORMAT = "beamstream-results/1"
#: the train-id value meaning "no train" in provenance datasets (train ids are uint64)
NO_TRAIN = (1 << 64) - 1


def iso(t: float | None) -> str:
    """ISO 8601 (UTC) of a Unix time; empty for None."""
    if t is None:
        return ""
    return datetime.fromtimestamp(float(t), UTC).isoformat()


def software_versions() -> dict[str, str]:
    """Versions of the software that computed the results."""
    out = {"beamstream": beamstream.__version__, "python": platform.python_version()}
    for mod in ("numpy", "numba", "h5py"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:
                continue
        out[mod] = str(getattr(m, "__version__", "?"))
    out["hdf5"] = h5py.version.hdf5_version
    return out


def segment_from_status(status: Mapping[str, Any], end: float, records_file: str = "") -> dict:
    """The provenance of one run (one process, one `Runner`) from its status dict."""
    acc = status.get("accepted_train_ids")
    return {
        "start": float(status.get("started") or end),
        "end": float(end),
        "first_train_id": status.get("first_train_id"),
        "last_train_id": status.get("last_train_id"),
        "accepted_train_ids": list(acc) if acc else None,
        "processed": int(status.get("processed", 0)),
        "received": int(status.get("received", 0)),
        "frames": int(status.get("frames", 0)),
        "rejected": dict(status.get("rejected", {})),
        "errors": dict(status.get("errors", {})),
        "drops": dict(status.get("drops", {})),
        "records_file": records_file,
    }


def combine_segments(segments: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over segments: summed counts, union of train id ranges, earliest start."""
    out: dict[str, Any] = {
        "start": min((s["start"] for s in segments), default=None),
        "end": max((s["end"] for s in segments), default=None),
    }
    for key in ("first_train_id", "last_train_id"):
        vals = [s[key] for s in segments if s.get(key) is not None]
        out[key] = (min if key.startswith("first") else max)(vals) if vals else None
    ranges = [s["accepted_train_ids"] for s in segments if s.get("accepted_train_ids")]
    out["accepted_train_ids"] = (
        [min(r[0] for r in ranges), max(r[1] for r in ranges)] if ranges else None
    )
    for key in ("processed", "received", "frames"):
        out[key] = sum(int(s.get(key, 0)) for s in segments)
    for key in ("rejected", "errors", "drops"):
        c: collections.Counter[str] = collections.Counter()
        for s in segments:
            c.update(s.get(key, {}))
        out[key] = dict(c)
    return out


def _write_counts(group: h5py.Group, name: str, counts: Mapping[str, int]) -> None:
    g = group.create_group(name, track_order=True)
    g.attrs["NX_class"] = "NXcollection"
    for reason, n in counts.items():
        g.create_dataset(h5name(reason), data=np.int64(n))


def _write_provenance(
    entry: h5py.Group, segments: Sequence[Mapping[str, Any]], extra: Mapping
) -> None:
    prov = entry.create_group("provenance", track_order=True)
    prov.attrs["NX_class"] = "NXcollection"
    total = combine_segments(segments)
    for key in ("first_train_id", "last_train_id"):  # train ids are unsigned 64-bit
        prov.create_dataset(key, data=np.uint64(NO_TRAIN if total[key] is None else total[key]))
    acc = total["accepted_train_ids"] or [NO_TRAIN, NO_TRAIN]
    prov.create_dataset("accepted_train_ids", data=np.asarray(acc, np.uint64))
    for key in ("processed", "received", "frames"):
        prov.create_dataset(key, data=np.int64(total[key]))
    for key in ("rejected", "errors", "drops"):
        _write_counts(prov, key, total[key])
    prov.attrs["segments_json"] = to_json(list(segments))
    for k, v in extra.items():
        prov.attrs[k] = to_json(v) if not isinstance(v, str | int | float) else v
    versions = prov.create_group("versions")
    for k, v in software_versions().items():
        versions.create_dataset(k, data=v)


def write_results_file(
    path: str | os.PathLike[str],
    *,
    config_text: str,
    config_path: str,
    results: Mapping[str, Mapping[str, Result]],
    states: Mapping[str, Any],
    segments: Sequence[Mapping[str, Any]],
    snapshot: Mapping[str, Any],
    records_files: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
    compression: Mapping[str, Any] | None = None,
    fsync: bool = True,
    closed_epochs: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Write (atomically replace) a complete results file; see ``docs/hdf5.md`` for the layout."""
    total = combine_segments(segments)
    with atomic_h5(path, fsync=fsync) as f:
        f.attrs.update(
            NX_class="NXroot",
            default="entry",
            creator="beamstream",
            creator_version=beamstream.__version__,
            file_name=Path(path).name,
            file_time=iso(time.time()),
            beamstream_format=FORMAT,
        )
        entry = f.create_group("entry", track_order=True)
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("title", data="beamstream results")
        entry.create_dataset("start_time", data=iso(total["start"]))
        entry.create_dataset("end_time", data=iso(total["end"]))
        prog = entry.create_dataset("program_name", data="beamstream")
        prog.attrs["version"] = beamstream.__version__
        note = entry.create_group("config")
        note.attrs["NX_class"] = "NXnote"
        note.create_dataset("type", data="application/toml")
        note.create_dataset("data", data=config_text)
        note.create_dataset("file_name", data=config_path)
        note.attrs["fingerprint"] = pipeline_fingerprint(config_text)
        snap = entry.create_group("snapshot")
        snap.attrs["NX_class"] = "NXcollection"
        for k in ("seq", "time", "epoch", "final"):
            snap.create_dataset(k, data=snapshot[k])
        _write_provenance(entry, segments, extra or {})
        res = entry.create_group("results", track_order=True)
        res.attrs["NX_class"] = "NXcollection"
        for proc, named in results.items():
            pg = res.create_group(h5name(proc), track_order=True)
            pg.attrs["NX_class"] = "NXprocess"
            for r in named.values():
                write_result(pg, r, compression)
            if named:
                pg.attrs["default"] = h5name(next(iter(named.values())).name.split("/")[0])
        if len(res):
            res.attrs["default"] = next(iter(res))
            entry.attrs["default"] = "results"
        st = entry.create_group("states", track_order=True)
        st.attrs["NX_class"] = "NXcollection"
        for name, state in states.items():
            _write_state(st, name, state)
        write_closed_epochs(entry, closed_epochs, _write_state, compression)
        if records_files:
            entry.create_dataset(
                "records_files", data=list(records_files), dtype=h5py.string_dtype()
            )
            entry["records"] = h5py.ExternalLink(records_files[-1], "/records")
            entry["records_index"] = h5py.ExternalLink(records_files[-1], "/records_index")


def _write_state(group: h5py.Group, name: str, state: Any) -> None:
    if hasattr(state, "to_dict"):
        tree, kind = state.to_dict(), f"{type(state).__module__}:{type(state).__qualname__}"
    elif isinstance(state, np.ndarray):
        tree, kind = {"array": state}, "ndarray"
    elif isinstance(state, Mapping):
        tree, kind = dict(state), "dict"
    else:
        log.warning("state of %r (%s) cannot be stored: no to_dict()", name, type(state).__name__)
        return
    g = group.create_group(h5name(name), track_order=True)
    write_tree(g, tree)
    g.attrs["state_type"] = kind


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
        self.guard.attempt(
            lambda: write_results_file(
                self.path,
                config_text=self._config_text,
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
