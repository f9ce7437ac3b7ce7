"""What `beamstream report` shows of a results file: results, records and the run's facts.

Files written by the hdf5 sink are read with `beamstream.formats.results` (config text,
provenance segments, software versions, the default plot); any other NeXus-style file is read
generically: every ``NXdata`` group (``signal``, ``axes``/``dims`` attributes, axis datasets
with ``units``) becomes a result of the processor named by its parent group.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from beamstream.processors.base import Result

__all__ = ["read_nxdata", "load_report_data"]

log = logging.getLogger(__name__)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _nxdata_result(g: h5py.Group) -> Result | None:
    signal = _text(g.attrs.get("signal", "data"))
    if signal not in g or not isinstance(g[signal], h5py.Dataset):
        return None
    ds = g[signal]
    data = ds[()]
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
        return None
    axes = [_text(a) for a in np.atleast_1d(g.attrs.get("axes", []))]
    names = [_text(d) for d in np.atleast_1d(g.attrs.get("dims", []))]
    if len(names) != data.ndim:
        names = [a if a != "." else f"dim_{i}" for i, a in enumerate(axes)]
    if len(names) != data.ndim:
        names = [f"dim_{i}" for i in range(data.ndim)]
    coords: dict[str, np.ndarray] = {}
    coord_units: dict[str, str] = {}
    for i, dim in enumerate(names):
        c = g.get(dim.replace("/", "%2F"))
        if isinstance(c, h5py.Dataset) and c.ndim == 1 and c.shape[0] == data.shape[i]:
            values = c[()]
            if values.dtype.kind in "OS":
                values = np.array([_text(v) for v in values])
            coords[dim] = values
            if "units" in c.attrs:
                coord_units[dim] = _text(c.attrs["units"])
    name = g.name.rsplit("/", 1)[-1].replace("%2F", "/").replace("%25", "%")
    units = _text(ds.attrs.get("units", ""))
    return Result(name, data, tuple(names), coords, units, coord_units)


def read_nxdata(path: str | Path) -> dict[str, dict[str, Result]]:
    """Every ``NXdata`` group of an HDF5 file, as ``{parent group name: {name: Result}}``."""
    out: dict[str, dict[str, Result]] = {}
    with h5py.File(path, "r") as f:
        groups: list[h5py.Group] = []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group) and _text(obj.attrs.get("NX_class", "")) == "NXdata":
                groups.append(obj)

        f.visititems(visit)
        for g in groups:
            try:
                res = _nxdata_result(g)
            except (ValueError, KeyError, OSError) as e:
                log.warning("%s: skipped %s: %s", path, g.name, e)
                continue
            if res is not None:
                proc = g.parent.name.rsplit("/", 1)[-1] or "results"
                out.setdefault(proc, {})[res.name] = res
    return out


def _versions(path: Path) -> dict[str, str]:
    try:
        with h5py.File(path, "r") as f:
            g = f.get("entry/provenance/versions")
            return {k: _text(g[k][()]) for k in g} if g is not None else {}
    except (OSError, KeyError):
        return {}


def load_report_data(path: str | Path) -> tuple[dict[str, dict[str, Result]], dict[str, Any], dict]:
    """``(results, records, facts)`` of a results file (records: ``{key: 1-D array}``).

    ``facts`` holds ``file``, and for beamstream files ``config`` (its file name),
    ``config_text``, ``segments`` (provenance, one per run), ``totals`` (over the segments),
    ``versions`` and ``snapshot`` (``seq``, ``epoch``, ``final``, ``time``).
    """
    path = Path(path)
    if not path.exists():
        raise OSError(f"{path}: no such file")
    facts: dict[str, Any] = {"file": str(path)}
    try:
        from beamstream.formats.results import read_records, read_results_file
        from beamstream.formats.results_writer import combine_segments

        rf = read_results_file(path)
    except (ImportError, ValueError) as e:
        log.info("%s: reading NXdata groups generically (%s)", path, e)
        return read_nxdata(path), {}, facts
    records: dict[str, Any] = {}
    try:
        records = read_records(rf.records_paths(), rows=rf.records_rows())
    except (OSError, ValueError) as e:  # a missing records file only loses the scalar plots
        log.warning("%s: records not read: %s", path, e)
    facts.update(
        config=rf.config_path,
        config_text=rf.config_text,
        segments=rf.segments,
        totals=combine_segments(rf.segments),
        versions=_versions(path),
        snapshot=dict(rf.snapshot),
    )
    return rf.results, records, facts
