"""Panel factories: a Bokeh layout per result, chosen by the dims the result declares.

Every panel owns its ColumnDataSources (named ``<role>:<processor>.<result>`` so that tests and
browsers can find them with ``get_model_by_name``) and an ``update(results, view)`` method that
fills them from a processor's finalized results. Used by the live app and, statically, by the
report.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    Div,
    LayoutDOM,
    LegendItem,
)
from bokeh.plotting import figure

from beamstream.processors.base import Result
from beamstream.sinks.dashboard import prep
from beamstream.sinks.dashboard.axes import AxisScale, default_axes
from beamstream.sinks.dashboard.prep import Kind
from beamstream.sinks.dashboard.roi import pump_probe_curve
from beamstream.sinks.dashboard.views import (
    COLORS,
    WIDTH,
    Controls,
    ImageView,
    readable_numbers,
)

__all__ = ["Panel", "make_panel", "PANEL_TYPES"]


class Panel:
    """A panel for one result of one processor."""

    def __init__(self, proc: str, res: Result, kind: Kind, mask: np.ndarray | None = None):
        self.proc, self.result, self.kind = proc, res.name, kind
        self.key = f"{proc}.{res.name}"
        self.layout: LayoutDOM = column()
        self._static = False
        #: a short text shown instead of the plots when there is nothing to draw
        self.note = Div(text="", visible=False, width=WIDTH, name=f"note:{self.key}")
        self.empty = False

    def show_empty(self, empty: bool, figs: list[Any], why: str = "") -> None:
        """Hide ``figs`` and show a "no data" note instead (or the other way round)."""
        if empty:
            text = f"<b>{html.escape(self.key)}</b>: no data{html.escape(why)}"
            if self.note.text != text:
                self.note.text = text
        self.empty = empty
        self.note.visible = empty
        for f in figs:
            f.visible = not empty

    def update(self, results: dict[str, Result], controls: Controls) -> None:
        """Fill the sources from this processor's results with the current controls."""
        raise NotImplementedError

    def static(self) -> None:
        """Hide the controls that need a server (for a standalone page)."""
        self._static = True
        axes = getattr(self, "axes", None)
        if axes is not None:
            axes.widget.visible = False

    def title(self, res: Result, controls: Controls) -> str:
        sel = controls.selection
        where = (
            "all scan bins" if sel.scan is None or not self.kind.has_scan else f"scan {sel.scan:g}"
        )
        unit = f" [{res.units}]" if res.units else ""
        return f"{self.key}{unit} ({where})"


class ImagePanel(Panel):
    """Detector images (``[scan,] [slot,] [module,] y, x``) and maps (e.g. ``phi, q``)."""

    def __init__(self, proc: str, res: Result, kind: Kind, mask: np.ndarray | None = None):
        super().__init__(proc, res, kind, mask)
        is_map = kind.kind == "map"
        labels = (kind.data_dims[-1], kind.data_dims[-2]) if is_map else ("x", "y")
        self.image = ImageView(
            self.key,
            self.key,
            None if is_map else mask,
            # square cells for detector pixels and for scan maps (both axes in motor units)
            match_aspect=not is_map or kind.data_dims == prep.PIXEL_DIMS,
            labels=labels,
        )
        self.layout = column(self.note, self.image.fig, name=f"panel:{self.key}")

    def figures(self) -> list[Any]:
        return [self.image.fig]

    def update(self, results: dict[str, Result], controls: Controls) -> None:
        res = results.get(self.result)
        if res is None:
            return
        sel = controls.selection
        # choose the slot first: only the drawn image is reduced over the scan bins
        groups = self.kind.group_dims
        chosen = prep.select_groups(res, groups, sel.slot)
        weights = prep.select_groups(prep.sibling(results, res, "weight"), groups, sel.slot)
        values, _ = prep.reduce_scan(chosen, sel.scan, weights)
        img = prep.pick(values, tuple(d for d in groups if d in chosen.dims), chosen, sel.slot)
        slot = self._slot_label(res, sel.slot)
        title = self.title(res, controls) + slot
        self.image.fig.title.text = title
        empty = prep.all_missing(img)
        self.show_empty(empty, self.figures(), f" ({title.split(' (', 1)[-1]}")
        if not empty:
            self.image.show(img, controls, res, self.kind.data_dims)

    def _slot_label(self, res: Result, slot: str | None) -> str:
        for d in self.kind.group_dims:
            names = [str(s) for s in res.coords.get(d, ())]
            if len(names) > 1:  # a single slot ("image") goes without saying
                return f" {d}={slot if slot in names else names[0]}"
        return ""


class PumpProbePanel(ImagePanel):
    """The pump-probe difference image and its ROI sum vs scan value with error bars."""

    def __init__(self, proc: str, res: Result, kind: Kind, mask: np.ndarray | None = None):
        super().__init__(proc, res, kind, mask)
        self.curve = ColumnDataSource(
            {"x": [], "y": [], "lower": [], "upper": []}, name=f"curve:{self.key}"
        )
        unit = res.coord_units.get("scan", "")
        fig = figure(
            title=f"{self.key}: ROI sum vs scan",
            width=WIDTH,
            height=380,
            x_axis_label=f"scan [{unit}]" if unit else "scan",
            y_axis_label="ROI sum",
            tools="pan,wheel_zoom,box_zoom,reset,hover,save",
            name=f"figure:curve:{self.key}",
        )
        fig.yaxis.formatter = readable_numbers()
        fig.line("x", "y", source=self.curve, line_width=2)
        fig.scatter("x", "y", source=self.curve, size=6)
        fig.segment("x", "lower", "x", "upper", source=self.curve, line_width=1.5)
        self.curve_fig = fig
        self.layout = column(self.note, row(self.image.fig, fig), name=f"panel:{self.key}")

    def update(self, results: dict[str, Result], controls: Controls) -> None:
        super().update(results, controls)
        res = results.get(self.result)
        if res is not None:
            curve = pump_probe_curve(results, res, controls.roi)
            self.curve.data = curve
            roi = controls.roi
            where = "" if roi is None else " (ROI x {}..{}, y {}..{})".format(*roi)
            self.curve_fig.title.text = f"{self.key}: ROI sum vs scan{where}"
            # the image may be empty for the chosen bin while other bins have a curve
            self.curve_fig.visible = not prep.all_missing(curve["y"])


class LinesPanel(Panel):
    """Curves (one data dim, e.g. I(q), spectra vs energy) or scalars vs scan: a line per group.

    Curves show the selected scan bin (or all bins, count-weighted), one line per slot, error
    bars from a ``sigma_*`` sibling for the selected slot, and the latest train's curve when the
    processor leaves one in the train's products.
    """

    def __init__(self, proc: str, res: Result, kind: Kind, mask: np.ndarray | None = None):
        super().__init__(proc, res, kind, mask)
        self.lines = ColumnDataSource(
            {"xs": [], "ys": [], "label": [], "color": [], "dash": [], "width": []},
            name=f"curve:{self.key}",
        )
        self.errors = ColumnDataSource(
            {"x": [], "lower": [], "upper": []}, name=f"errors:{self.key}"
        )
        self.latest = ColumnDataSource({"x": [], "y": []}, name=f"latest:{self.key}")
        self.points = ColumnDataSource({"xs": [], "ys": [], "color": []}, name=f"points:{self.key}")
        if kind.kind == "curve":
            dim = kind.data_dims[0]
            u = res.coord_units.get(dim, "")
            xl = f"{dim} [{u}]" if u else dim
        else:
            u = res.coord_units.get("scan", "")
            xl = f"scan [{u}]" if u else "scan"
        self.fig = figure(
            title=self.key,
            width=WIDTH,
            height=360,
            x_axis_label=xl,
            y_axis_label=res.units or short(res.name),
            tools="pan,wheel_zoom,box_zoom,reset,save",
            name=f"figure:{self.key}",
        )
        self.fig.multi_line(
            "xs",
            "ys",
            source=self.lines,
            color="color",
            line_dash="dash",
            line_width="width",
            legend_field="label",
        )
        self.fig.segment("x", "lower", "x", "upper", source=self.errors, color="black", alpha=0.6)
        self.latest_item: LegendItem | None = None
        if kind.kind == "curve":
            latest = self.fig.line(
                "x",
                "y",
                source=self.latest,
                color="gray",
                line_dash="dashed",
                legend_label="latest train",
            )
            self.latest_item = next(
                (i for i in self.fig.legend.items if latest in i.renderers), None
            )
            if self.latest_item is not None:
                self.latest_item.visible = False
        else:
            self.fig.scatter("xs", "ys", source=self.points, color="color", size=6)
        self.fig.legend.click_policy = "hide"
        self.fig.legend.location = "top_right"
        self.fig.legend.background_fill_alpha = 0.7
        self.fig.yaxis.formatter = readable_numbers()
        #: scalars of a single scan bin (or none) are shown as a small table instead of a plot
        self.table = Div(text="", visible=False, name=f"table:{self.key}")
        self.axes = AxisScale(self.fig, self.key, default=default_axes(res, kind))
        parts = [self.note, self.table, self.fig]
        if kind.kind == "curve":
            parts.insert(2, self.axes.widget)
        self.layout = column(*parts, name=f"panel:{self.key}")

    def update(self, results: dict[str, Result], controls: Controls) -> None:
        res = results.get(self.result)
        if res is None:
            return
        sel = controls.selection
        if self.kind.kind == "scalar":
            self._scalar(res)
            self.fig.title.text = self.key
            return
        weights = prep.sibling(results, res, "weight")
        sigma = prep.sibling(results, res, "sigma")
        values, sig = prep.reduce_scan(res, sel.scan, weights, sigma)
        title = self.title(res, controls)
        self.fig.title.text = title
        empty = prep.all_missing(values)
        self.show_empty(empty, [self.fig], f" ({title.split(' (', 1)[-1]}")
        if not self._static:
            self.axes.widget.visible = not empty  # no axes choice for a "no data" note
        if empty:
            return
        dim = self.kind.data_dims[0]
        x = np.asarray(res.coords.get(dim, np.arange(values.shape[-1])), dtype=np.float64)
        if dim in ("train", "train_id") and x.size:  # ~1e10: offsets, the first id in the label
            first = int(x[0])
            x = x - first
            self.fig.xaxis[0].axis_label = f"train id − {first}"
        curves = values.reshape(-1, values.shape[-1])
        labels = _group_labels(res, self.kind.group_dims)
        self.lines.data = _lines(x, curves, labels)
        if sig is not None:
            s = prep.pick(sig, self.kind.group_dims, res, sel.slot)
            v = prep.pick(values, self.kind.group_dims, res, sel.slot)
            self.errors.data = {"x": x, "lower": v - s, "upper": v + s}

    def _scalar(self, res: Result) -> None:
        data = np.asarray(res.data, dtype=np.float64)
        if data.size == 0:  # no scan bin yet (nothing processed)
            self.table.visible = False
            self.show_empty(True, [self.fig], " yet")
            return
        if not self.kind.has_scan:
            keys = np.zeros(1)
            data = data.reshape(1, -1)
        else:
            keys = np.asarray(res.coords.get("scan", np.arange(data.shape[0])), dtype=np.float64)
            data = data.reshape(data.shape[0], -1)
        order = np.argsort(keys, kind="stable")
        labels = _group_labels(res, self.kind.group_dims)
        self.lines.data = lines = _lines(keys[order], data[order].T, labels)
        n = len(keys)
        self.points.data = {
            "xs": np.tile(keys[order], len(lines["xs"])),
            "ys": np.concatenate(lines["ys"]) if lines["ys"] else np.zeros(0),
            "color": [c for c in lines["color"] for _ in range(n)],
        }
        finite = data[np.isfinite(data)]
        if finite.size and finite.min() == finite.max():
            # constant values get a readable axis: Bokeh's span for max == min is 2 (and 1.774e5
            # +- 1 is labelled 1.774e+5 in steps of 1e-1); only used while max == min
            top = abs(float(finite[0]))
            self.fig.y_range.default_span = 0.2 * top if top > 0 else 2.0
        empty = prep.all_missing(data)
        tiny = n <= 1 and not empty
        self.show_empty(empty, [])
        if tiny:
            self.table.text = _table(self.key, res, labels, data[order].reshape(-1), keys[order])
        self.table.visible = tiny
        self.fig.visible = not (tiny or empty)

    def show_latest(self, x: np.ndarray | None, y: np.ndarray | None) -> None:
        """The latest train's curve (or nothing)."""
        if x is None or y is None:
            self.latest.data = {"x": [], "y": []}
        else:
            self.latest.data = {"x": np.asarray(x, np.float64), "y": np.asarray(y, np.float64)}
        if self.latest_item is not None:  # no "latest train" legend entry without its curve
            self.latest_item.visible = x is not None and y is not None


def short(name: str) -> str:
    return prep.short_name(name)


def _group_labels(res: Result, group_dims: tuple[str, ...]) -> list[str]:
    labels = [""]
    for d in group_dims:
        n = int(np.shape(res.data)[res.dims.index(d)])
        names = [str(s) for s in res.coords.get(d, range(n))]
        labels = [f"{a}/{b}" if a else b for a in labels for b in names]
    if len(labels) == 1:  # one line: named after the result, not after the default slot "image"
        return [short(res.name)]
    return labels


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "–"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}".replace(",", "\u2009")
    return f"{v:.6g}"


def _table(key: str, res: Result, labels: list[str], values: np.ndarray, keys: np.ndarray) -> str:
    """A small HTML table of a scalar result's values (one scan bin or none)."""
    unit = f" [{html.escape(res.units)}]" if res.units else ""
    scan = f" (scan {keys[0]:g})" if keys.size and "scan" in res.dims else ""
    head = f"<b>{html.escape(key)}</b>{unit}{html.escape(scan)}"
    cells = "".join(
        f"<tr><td style='padding-right:1em'>{html.escape(lab)}</td>"
        f"<td style='text-align:right;font-family:monospace'>{_fmt(float(v))}</td></tr>"
        for lab, v in zip(labels, values, strict=False)
    )
    return f"{head}<table>{cells}</table>"


#: line styles of successive groups: lines that coincide (e.g. equal counts per slot) all stay
#: visible, thick and solid under thin and dashed
DASHES = ("solid", "dashed", "dotted", "dashdot")
WIDTHS = (4.0, 2.5, 2.0, 1.5)


def _lines(x: np.ndarray, curves: np.ndarray, labels: list[str]) -> dict[str, list[Any]]:
    xs, ys, lab, col, dash, width = [], [], [], [], [], []
    for i, c in enumerate(curves):
        xs.append(np.asarray(x, np.float64))
        ys.append(np.asarray(c, np.float64))
        lab.append(labels[i] if i < len(labels) else str(i))
        col.append(COLORS[i % len(COLORS)])
        many = len(curves) > 1
        dash.append(DASHES[i % len(DASHES)] if many else "solid")
        width.append(WIDTHS[min(i, len(WIDTHS) - 1)] if many else 2.0)
    return {"xs": xs, "ys": ys, "label": lab, "color": col, "dash": dash, "width": width}


#: panel class by kind (the pump-probe image gets its delay-scan curve)
PANEL_TYPES: dict[str, type[Panel]] = {
    "image": ImagePanel,
    "map": ImagePanel,
    "curve": LinesPanel,
    "scalar": LinesPanel,
}


def make_panel(proc: str, res: Result, mask: np.ndarray | None = None) -> Panel | None:
    """The panel for ``res`` (None when the result is not shown, e.g. counts and errors)."""
    kind = prep.classify(res)
    if kind is None:
        return None
    if kind.kind == "bars":
        from beamstream.sinks.dashboard.bars import BarsPanel

        return BarsPanel(proc, res, kind, mask)
    if kind.kind == "image" and short(res.name) == "pump_probe" and kind.has_scan:
        return PumpProbePanel(proc, res, kind, mask)
    return PANEL_TYPES[kind.kind](proc, res, kind, mask)
