"""`beamstream report RESULTS.h5 [-o report.html]`: a standalone HTML page of a results file.

The page shows the dashboard's result panels (all scan bins combined; one image per slot) and the
per-train records, with BokehJS inlined so that it opens offline. Files written by the hdf5 sink
are read with `beamstream.formats.results`; any other NeXus-style file is read generically: every
``NXdata`` group (``signal``, ``axes``/``dims`` attributes, axis datasets with ``units``) becomes
a result of the processor named by its parent group.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Div
from bokeh.plotting import figure
from bokeh.resources import CDN, INLINE

from beamstream.processors.base import Result
from beamstream.sinks.dashboard.panels import make_panel
from beamstream.sinks.dashboard.prep import Selection
from beamstream.sinks.dashboard.views import WIDTH, Controls

__all__ = ["read_nxdata", "load_report_data", "build_report", "write_report"]

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


def load_report_data(path: str | Path) -> tuple[dict[str, dict[str, Result]], dict[str, Any], dict]:
    """``(results, records, facts)`` of a results file (records: ``{key: 1-D array}``)."""
    path = Path(path)
    if not path.exists():
        raise OSError(f"{path}: no such file")
    facts: dict[str, Any] = {"file": str(path)}
    try:
        from beamstream.formats.results import read_records, read_results_file

        rf = read_results_file(path)
    except (ImportError, ValueError) as e:
        log.info("%s: reading NXdata groups generically (%s)", path, e)
        return read_nxdata(path), {}, facts
    records: dict[str, Any] = {}
    try:
        records = read_records(rf.records_paths(), rows=rf.records_rows())
    except (OSError, ValueError) as e:  # a missing records file only loses the scalar plots
        log.warning("%s: records not read: %s", path, e)
    facts["config"] = rf.config_path
    if rf.segments:
        first, last = rf.segments[0], rf.segments[-1]
        facts.update(
            {
                k: last.get(k)
                for k in ("processed", "last_train_id", "software_version")
                if k in last
            }
        )
        facts["first_train_id"] = first.get("first_train_id")
    facts.update({k: v for k, v in rf.snapshot.items() if k in ("seq", "epoch", "final")})
    return rf.results, records, facts


def _records_plots(records: Mapping[str, Any]) -> list[Any]:
    if "train_id" not in records:
        return []
    tid = np.asarray(records["train_id"], dtype=np.float64)
    data = {"train_id": tid}
    for k, v in records.items():
        a = np.asarray(v)
        if k != "train_id" and a.ndim == 1 and len(a) == len(tid) and a.dtype.kind in "biuf":
            data[k] = a.astype(np.float64)
    source = ColumnDataSource(data, name="records")
    figs = []
    for key in [k for k in data if k != "train_id"][:8]:
        fig = figure(
            width=WIDTH,
            height=170,
            x_axis_label="train id",
            y_axis_label=key,
            title=key,
            tools="pan,xwheel_zoom,box_zoom,reset,save",
        )
        fig.line("train_id", key, source=source)
        figs.append(fig)
    return figs


def build_report(
    results: Mapping[str, Mapping[str, Result]],
    records: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
    title: str = "beamstream report",
    max_image: int = 512,
) -> Any:
    """A Bokeh layout of static panels for ``{processor: {name: Result}}`` (a Snapshot's
    ``results``), the per-train records and a table of facts."""
    items = [Div(text=f"<h2>{html.escape(title)}</h2>")]
    if facts:
        cells = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(str(k))}</th>"
            f"<td>{html.escape(str(v))}</td></tr>"
            for k, v in facts.items()
        )
        items.append(Div(text=f"<table>{cells}</table>", name="facts"))
    for proc, named in results.items():
        named = dict(named)
        for res in named.values():
            slots = [str(s) for s in res.coords.get("slot", ())]
            panel0 = make_panel(proc, res)
            if panel0 is None:
                continue
            choices = (
                slots if panel0.kind.kind in ("image", "map") and "slot" in res.dims else [None]
            )
            panels = []
            for i, slot in enumerate(choices or [None]):
                panel = panel0 if i == 0 else make_panel(proc, res)
                panel.update(named, Controls(Selection(None, slot), max_image=max_image))
                panel.static()  # no server behind the page: server-side controls hidden
                panels.append(panel.layout)
            items.append(row(*panels) if len(panels) <= 3 else column(*panels))
    figs = _records_plots(records or {})
    if figs:
        items.append(Div(text="<h3>per-train records</h3>"))
        items += figs
    return column(*items, name="report")


def write_report(
    results_path: str | Path,
    out: str | Path | None = None,
    inline: bool = True,
    title: str | None = None,
) -> Path:
    """Write the HTML report of a results file; returns its path (default: ``<file>.html``).

    ``inline=True`` embeds BokehJS (works offline); False loads it from Bokeh's CDN.
    """
    results_path = Path(results_path)
    results, records, facts = load_report_data(results_path)
    if not results and not records:
        raise ValueError(f"{results_path}: no results (NXdata groups) found")
    title = title or f"beamstream report: {results_path.name}"
    layout = build_report(results, records, facts, title)
    target = Path(out) if out is not None else results_path.with_suffix(".html")
    page = file_html(layout, INLINE if inline else CDN, title)
    target.write_text(page, encoding="utf-8")
    return target
