"""A bar chart of counts by named category (e.g. why frames were not placed on a scan map), with
a warning line when the result carries one (``attrs["grid_warning"]`` or ``attrs["warning"]``)."""

from __future__ import annotations

import html

import numpy as np
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div, FactorRange
from bokeh.plotting import figure

from beamstream.processors.base import Result
from beamstream.sinks.dashboard import prep
from beamstream.sinks.dashboard.panels import Panel
from beamstream.sinks.dashboard.prep import Kind
from beamstream.sinks.dashboard.views import WIDTH, Controls, readable_numbers

__all__ = ["BarsPanel", "WARNING_ATTRS", "category_names"]

#: result attributes shown as the panel's warning line
WARNING_ATTRS = ("grid_warning", "layout_warning", "warning")


def category_names(res: Result, dims: tuple[str, ...]) -> list[str]:
    """The bar names: the categories of one dim, or ``"a / b"`` for each pair of two."""
    names = [""]
    for d in dims:
        names = [f"{a} / {c}" if a else str(c) for a in names for c in res.coords[d]]
    return names


class BarsPanel(Panel):
    """Counts per category (summed over scan bins and groups), bars named by category."""

    def __init__(self, proc: str, res: Result, kind: Kind, mask: np.ndarray | None = None):
        super().__init__(proc, res, kind, mask)
        names = category_names(res, kind.data_dims)
        self.source = ColumnDataSource(
            {"name": names, "count": [0] * len(names)}, name=f"bars:{self.key}"
        )
        self.fig = figure(
            title=self.key,
            width=WIDTH,
            height=300,
            x_range=FactorRange(*names),
            y_axis_label=res.units or "count",
            tools="save,hover",
            tooltips=[(" / ".join(kind.data_dims), "@name"), ("count", "@count")],
            name=f"figure:{self.key}",
        )
        self.fig.vbar(x="name", top="count", source=self.source, width=0.7, color="#c62828")
        self.fig.y_range.start = 0
        self.fig.xaxis.major_label_orientation = 0.5
        self.fig.yaxis.formatter = readable_numbers()
        self.warning = Div(text="", visible=False, width=WIDTH, name=f"warning:{self.key}")
        self.layout = column(self.note, self.warning, self.fig, name=f"panel:{self.key}")

    def update(self, results: dict[str, Result], controls: Controls) -> None:
        res = results.get(self.result)
        if res is None:
            return
        dims = self.kind.data_dims
        data = np.asarray(res.data, np.float64)
        axes = [res.dims.index(d) for d in dims]
        data = np.moveaxis(data, axes, range(data.ndim - len(dims), data.ndim))
        counts = np.nansum(data.reshape(-1, int(np.prod(data.shape[-len(dims) :]))), axis=0)
        self.source.data = {"name": category_names(res, dims), "count": counts.tolist()}
        total = float(counts.sum())
        self.fig.title.text = f"{self.key}: {total:.0f} {res.units or ''}".rstrip()
        text = next((str(res.attrs[k]) for k in WARNING_ATTRS if res.attrs.get(k)), "")
        self.warning.text = (
            f"<div style='color:#c62828;font-weight:bold'>&#9888; {html.escape(text)}</div>"
            if text
            else ""
        )
        self.warning.visible = bool(text)
        self.show_empty(prep.all_missing(counts), [self.fig])
