"""The results file format (``beamstream-results/1``, see ``docs/hdf5.md``): writing.

`write_results_file` writes one snapshot (NeXus-style results, accumulator states, config and
provenance segments); `segment_from_status` / `combine_segments` build the provenance from a
run's status (a view of its `beamstream.counters.Counters`). Reading is
`beamstream.formats.results`.
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
from beamstream.config import text_fingerprint
from beamstream.formats.epochs import write_closed_epochs
from beamstream.formats.h5layout import (
    atomic_h5,
    h5name,
    to_json,
    write_result,
    write_tree,
)
from beamstream.formats.nexus import (
    cansas_path_for,
    has_iq,
    write_cansas,
    write_default_plot,
    write_instrument,
)
from beamstream.processors.base import Result, State
from beamstream.processors.presentation import errors_of

__all__ = [
    "write_results_file",
    "segment_from_status",
    "combine_segments",
    "records_path_for",
    "software_versions",
    "FORMAT",
]

log = logging.getLogger(__name__)

#: the train-id value meaning "no train" in provenance datasets (train ids are uint64)
NO_TRAIN = (1 << 64) - 1

#: ``/`` attribute ``beamstream_format`` of results files
FORMAT = "beamstream-results/1"


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


def records_path_for(path: str | os.PathLike[str], taken: Sequence[str] = ()) -> Path:
    """``run.h5`` -> ``run.records.h5`` (``run.records-2.h5`` ... when that name is taken)."""
    p = Path(path)
    stem = p.name[: -len(p.suffix)] if p.suffix in (".h5", ".hdf5", ".nxs") else p.name
    names = {Path(t).name for t in taken}
    k = 1
    while True:
        name = f"{stem}.records.h5" if k == 1 else f"{stem}.records-{k}.h5"
        if name not in names:
            return p.with_name(name)
        k += 1


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
    for key in ("first_train_id", "last_train_id"):
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
    versions: Sequence[Any] = (),
    closed: Sequence[Any] = (),
    closed_epochs: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Write (atomically replace) a complete results file; see ``docs/hdf5.md`` for the layout.

    ``versions`` / ``closed``: the config versions and closed segments of a steered run
    (``/entry/control``, see ``docs/control.md``).
    """
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
        title = f"beamstream: {Path(config_path).name or 'pipeline'}"
        entry.create_dataset("title", data=title)
        entry.create_dataset("start_time", data=iso(total["start"]))
        entry.create_dataset("end_time", data=iso(total["end"]))
        prog = entry.create_dataset("program_name", data="beamstream")
        prog.attrs["version"] = beamstream.__version__
        note = entry.create_group("config")
        note.attrs["NX_class"] = "NXnote"
        note.create_dataset("type", data="application/toml")
        note.create_dataset("data", data=config_text)
        note.create_dataset("file_name", data=config_path)
        note.attrs["fingerprint"] = text_fingerprint(config_text)
        snap = entry.create_group("snapshot")
        snap.attrs["NX_class"] = "NXcollection"
        for k in ("seq", "time", "epoch", "final"):
            snap.create_dataset(k, data=snapshot[k])
        _write_provenance(entry, segments, extra or {})
        _write_results(entry, results, compression)
        write_instrument(entry, config_text)
        write_default_plot(entry, results)
        if has_iq(results):
            entry.create_dataset("cansas_file", data=cansas_path_for(path).name)
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
        if versions:
            from beamstream.control.segments import write_control

            write_control(entry, versions, closed, snapshot["epoch"], _write_state, compression)
    if has_iq(results):  # SAS tools read a file of NXcanSAS entries only
        with atomic_h5(cansas_path_for(path), fsync=fsync) as f:
            write_cansas(f, results, config_text, title)


def _write_results(
    entry: h5py.Group,
    results: Mapping[str, Mapping[str, Result]],
    compression: Mapping[str, Any] | None,
) -> None:
    """``entry/results/<processor>/<result>`` (NXdata), each processor's main result its default."""
    res = entry.create_group("results", track_order=True)
    res.attrs["NX_class"] = "NXcollection"
    for proc, named in results.items():
        pg = res.create_group(h5name(proc), track_order=True)
        pg.attrs["NX_class"] = "NXprocess"
        for r in named.values():
            errors = errors_of(r, named)
            write_result(pg, r, compression, errors=errors, title=f"{r.name} ({proc})")
        main = next((r for r in named.values() if r.attrs.get("default_plot")), None)
        main = main or next(iter(named.values()), None)
        if main is not None:  # nested names: a default at every level
            g = pg
            for part in [p for p in main.name.split("/") if p]:
                g.attrs["default"] = h5name(part)
                g = g[h5name(part)]
    if len(res):
        res.attrs["default"] = next(iter(res))
        entry.attrs["default"] = "results"


def _write_state(group: h5py.Group, name: str, state: Any) -> None:
    if not isinstance(state, State):
        log.warning("state of %r (%s) is not a State: not stored", name, type(state).__name__)
        return
    tree, kind = state.to_dict(), f"{type(state).__module__}:{type(state).__qualname__}"
    g = group.create_group(h5name(name), track_order=True)
    write_tree(g, tree)
    g.attrs["state_type"] = kind
