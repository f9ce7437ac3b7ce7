"""`beamstream report RESULTS.h5 [-o report.html]`: a standalone HTML page of a results file.

The page opens on what the run was: a two-column header with the run's facts (file, config,
human start and end times, plain train ids, counts of processed, rejected and failed trains)
next to its provenance (one row per run segment, software versions), then the config text. Then
the pipeline's science result (the file's default plot) and every other result panel of the
dashboard (all scan bins combined; one image per slot), then the per-train records against the
train id, two panels a row. BokehJS is inlined so that the page opens offline. Reading the file
is `beamstream.sinks.dashboard.report_data`'s job.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import (
    BasicTicker,
    BasicTickFormatter,
    ColumnDataSource,
    DatetimeTickFormatter,
    Div,
    Row,
)
from bokeh.plotting import figure
from bokeh.resources import CDN, INLINE

from beamstream.processors.base import Result
from beamstream.processors.presentation import default_plot
from beamstream.sinks.dashboard.panels import make_panel
from beamstream.sinks.dashboard.prep import Selection
from beamstream.sinks.dashboard.report_data import load_report_data, read_nxdata
from beamstream.sinks.dashboard.views import WIDTH, Controls
from beamstream.sinks.reprs import human_time

__all__ = ["read_nxdata", "load_report_data", "build_report", "write_report", "header_html"]

#: panels per row
COLUMNS = 2
PAGE_WIDTH = COLUMNS * (WIDTH + 60)

_CSS = f"""
<style>
 .bs-head {{display:grid; grid-template-columns: 1fr 1fr; gap: 24px; font-family: sans-serif;
   font-size: 13px; width: {PAGE_WIDTH}px}}
 .bs-head table {{border-collapse: collapse}}
 .bs-head th {{text-align:left; padding: 2px 12px 2px 0; vertical-align: top}}
 .bs-head td {{padding: 2px 8px 2px 0; vertical-align: top}}
 .bs-head h3, .bs-config h3 {{margin: 4px 0 6px 0}}
 .bs-seg td, .bs-seg th {{border-bottom: 1px solid #ddd}}
 .bs-config {{font-family: sans-serif; width: {PAGE_WIDTH}px}}
 .bs-config pre {{max-height: 260px; overflow: auto; background: #f6f6f6; padding: 6px;
   font-size: 12px}}
</style>
"""


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _counts(c: Mapping[str, int] | None) -> str:
    return ", ".join(f"{k}: {v}" for k, v in (c or {}).items()) or "none"


def _ids(first: Any, last: Any) -> str:
    if first is None or last is None:
        return "none"
    return f"{int(first)} – {int(last)} ({int(last) - int(first) + 1} ids)"


def _run_table(facts: Mapping[str, Any]) -> str:
    t = facts.get("totals") or {}
    snap = facts.get("snapshot") or {}
    rows = [("file", facts.get("file", "")), ("config", facts.get("config") or "(not recorded)")]
    if t:
        start, end = t.get("start"), t.get("end")
        span = f" ({end - start:.1f} s)" if start is not None and end is not None else ""
        acc = t.get("accepted_train_ids") or [None, None]
        rows += [
            ("started", human_time(start)),
            ("ended", human_time(end) + span),
            ("train ids seen", _ids(t.get("first_train_id"), t.get("last_train_id"))),
            ("train ids accepted", _ids(*acc)),
            ("trains", f"{t.get('processed', 0)} processed of {t.get('received', 0)} received"),
            ("frames", t.get("frames", 0)),
            ("rejected", _counts(t.get("rejected"))),
            ("errors", _counts(t.get("errors"))),
            ("dropped", _counts(t.get("drops"))),
        ]
    if snap:
        state = "final" if snap.get("final") else "intermediate (run not finished)"
        rows.append(("snapshot", f"#{snap.get('seq')} {state}, {human_time(snap.get('time'))}"))
    cells = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<div><h3>Run</h3><table>{cells}</table></div>"


def _provenance_table(facts: Mapping[str, Any]) -> str:
    segs: Sequence[Mapping[str, Any]] = facts.get("segments") or []
    if not segs:
        return "<div><h3>Provenance</h3>not recorded</div>"
    head = "<tr><th>#</th><th>start</th><th>train ids</th><th>trains</th><th>lost</th></tr>"
    body = ""
    for i, s in enumerate(segs, 1):
        lost = sum((s.get(k) or {}).get(r, 0) for k in ("errors", "drops") for r in s.get(k) or {})
        body += (
            f"<tr><td>{i}</td><td>{_esc(human_time(s.get('start')))}</td>"
            f"<td>{_esc(_ids(s.get('first_train_id'), s.get('last_train_id')))}</td>"
            f"<td>{_esc(s.get('processed', 0))}</td><td>{lost}</td></tr>"
        )
    versions = ", ".join(f"{k} {v}" for k, v in (facts.get("versions") or {}).items())
    return (
        f"<div><h3>Provenance</h3><table class='bs-seg'>{head}{body}</table>"
        f"<p>software: {_esc(versions or 'not recorded')}</p></div>"
    )


def header_html(title: str, facts: Mapping[str, Any]) -> str:
    """The page header: title, run facts and provenance side by side, then the config text."""
    parts = [_CSS, f"<h2 style='font-family:sans-serif'>{_esc(title)}</h2>"]
    parts.append(f"<div class='bs-head'>{_run_table(facts)}{_provenance_table(facts)}</div>")
    text = facts.get("config_text")
    if text:
        name = Path(str(facts.get("config") or "config")).name
        parts.append(
            f"<div class='bs-config'><h3>Config ({_esc(name)})</h3><pre>{_esc(text)}</pre></div>"
        )
    return "".join(parts)


def _is_wide(item: Any) -> bool:
    """A panel with plots side by side (pump-probe image and its ROI curve) fills a row."""
    if isinstance(item, Row):
        return len(item.children) > 1
    return any(_is_wide(c) for c in getattr(item, "children", ()))


def _grid(items: list[Any]) -> list[Any]:
    """Rows of up to ``COLUMNS`` items (a wide item alone), in order."""
    rows: list[list[Any]] = []
    for item in items:
        if _is_wide(item) or not rows or len(rows[-1]) == COLUMNS or _is_wide(rows[-1][0]):
            rows.append([item])
        else:
            rows[-1].append(item)
    return [row(*r) for r in rows]


def _panels(results: Mapping[str, Mapping[str, Result]], max_image: int) -> list[Any]:
    """Every shown result's panel layouts, the pipeline's default plot first."""
    order = [(p, n) for p, named in results.items() for n in named]
    first = default_plot(results)
    if first in order:
        order.remove(first)
        order.insert(0, first)
    out = []
    for proc, name in order:
        named = dict(results[proc])
        res = named[name]
        panel0 = make_panel(proc, res)
        if panel0 is None:
            continue
        slots = [str(s) for s in res.coords.get("slot", ())]
        image = panel0.kind.kind in ("image", "map") and "slot" in res.dims
        for i, slot in enumerate(slots if image and slots else [None]):
            panel = panel0 if i == 0 else make_panel(proc, res)
            panel.update(named, Controls(Selection(None, slot), max_image=max_image))
            panel.static()  # no server behind the page: server-side controls hidden
            fig = getattr(panel, "fig", None)
            if fig is not None and panel0.kind.data_dims[:1] == ("train",):
                _train_axis(fig)
            out.append(panel.layout)
    return out


def _train_axis(fig: Any) -> None:
    """Plain train ids on the x axis, few enough not to overlap."""
    fig.xaxis.formatter = BasicTickFormatter(use_scientific=False)
    fig.xaxis.ticker = BasicTicker(desired_num_ticks=4, min_interval=1)


def _records_plots(records: Mapping[str, Any]) -> list[Any]:
    if "train_id" not in records:
        return []
    tid = np.asarray(records["train_id"], dtype=np.int64)
    data: dict[str, np.ndarray] = {"train_id": tid}
    for k, v in records.items():
        a = np.asarray(v)
        if k != "train_id" and a.ndim == 1 and len(a) == len(tid) and a.dtype.kind in "biuf":
            data[k] = a.astype(np.float64)
    if "timestamp" in data:  # epoch seconds -> milliseconds for a date axis
        data["timestamp"] = data["timestamp"] * 1e3
    source = ColumnDataSource(data, name="records")
    figs = []
    for key in [k for k in data if k != "train_id"][:8]:
        fig = figure(
            width=WIDTH,
            height=200,
            x_axis_label="train id",
            y_axis_label="time (UTC)" if key == "timestamp" else key,
            title=key,
            tools="pan,xwheel_zoom,box_zoom,reset,save",
        )
        _train_axis(fig)
        if key == "timestamp":
            fig.yaxis.formatter = DatetimeTickFormatter(
                milliseconds="%H:%M:%S.%3N",
                seconds="%H:%M:%S",
                minsec="%H:%M:%S",
                minutes="%H:%M",
                hours="%H:%M",
            )
        fig.line("train_id", key, source=source)
        fig.scatter("train_id", key, source=source, size=3)
        figs.append(fig)
    return figs


def build_report(
    results: Mapping[str, Mapping[str, Result]],
    records: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
    title: str = "beamstream report",
    max_image: int = 512,
) -> Any:
    """A Bokeh layout: header (facts, provenance, config), the result panels for
    ``{processor: {name: Result}}`` (the default plot first) and the per-train records, two
    panels a row."""
    items: list[Any] = [Div(text=header_html(title, facts or {}), name="facts")]
    panels = _panels(results, max_image)
    if panels:
        items.append(Div(text="<h3 style='font-family:sans-serif'>Results</h3>"))
        items += _grid(panels)
    figs = _records_plots(records or {})
    if figs:
        items.append(Div(text="<h3 style='font-family:sans-serif'>Per-train records</h3>"))
        items += _grid(figs)
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
