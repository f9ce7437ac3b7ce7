"""`SteerPanel`: the dashboard's controls of a running pipeline, as config changes.

Everything here goes through the run's `beamstream.control.controller.Controller` (the object
the HTTP API serves), so a drawn ROI, an edited mask or a setting becomes a recorded config
version exactly as a ``beamstream ctl set`` would, with the same validation and messages:

* ROIs: the box and polygon select tools of the latest-image figure draw named regions; each
  becomes part of the ``roi`` processor (per-train records) and a curve against the scan here;
* a mask editor: boxes drawn in *mask* mode, a threshold on the latest image, load / save
  ``.npy`` (in the run's output folder); *apply mask* makes it the ``pixel_mask`` of the run;
* settings: frame pattern, the monitor threshold and the scan step;
* the current version and the change log.

Requests run in a worker thread (a change waits for its train boundary); results come back to
the document with ``add_next_tick_callback``.
"""

from __future__ import annotations

import html
import logging
import threading
import time
import tomllib
from collections.abc import Callable
from typing import Any

import numpy as np
from bokeh.events import SelectionGeometry
from bokeh.layouts import column, row
from bokeh.models import (
    BoxSelectTool,
    Button,
    ColumnDataSource,
    Div,
    NumericInput,
    PolySelectTool,
    RadioButtonGroup,
    TextInput,
)
from bokeh.plotting import figure

from beamstream.control.edits import (
    current_rois,
    find_processor,
    outline,
    roi_change,
    roi_from_geometry,
    settings_change,
)
from beamstream.control.patch import Change, ChangeError
from beamstream.sinks.dashboard.maskedit import MaskEditor
from beamstream.sinks.dashboard.views import COLORS, WIDTH

__all__ = ["SteerPanel", "roi_from_geometry"]

log = logging.getLogger(__name__)

LOG_ROWS = 12
#: outline colours that stand out on the viridis detector images
OUTLINES = ["#ff2020", "#ff9f1c", "#ff4fd8", "#ffffff", "#00e5ff", "#b0ff00"]


class SteerPanel:
    """The steering controls of one dashboard session (see the module docstring).

    Parameters
    ----------
    control
        The run's controller.
    hub
        The run's hub (records for the ROI curves, the output folder).
    image_fig
        The latest-image figure that gets the box and polygon tools.
    latest_image
        Returns the latest displayed image (full resolution) for the mask threshold.
    """

    def __init__(
        self,
        control: Any,
        hub: Any,
        image_fig: Any,
        latest_image: Callable[[], np.ndarray | None],
    ):
        self.control = control
        self.hub = hub
        self.latest_image = latest_image
        self.doc: Any = None
        self.requests = 0
        self._record_seq = 0
        self._shown_version = -1
        self._rois: list[dict[str, Any]] = []
        self._curves: dict[str, dict[float, list[float]]] = {}
        self.version = Div(text="config version 1", name="config_version")
        self.message = Div(text="", name="control_message", width=WIDTH)
        self.changes = Div(text="", name="change_log", width=WIDTH)
        self._tools(image_fig)
        self._roi_widgets()
        self.masks = MaskEditor(control, latest_image, self.message, self._request)
        self._settings_widgets()
        self.layout = column(
            Div(text="<b>steer the run</b>"),
            self.version,
            self.message,
            row(self.mode, self.roi_name, self.clear_rois),
            self.curve_fig,
            self.masks.layout,
            row(self.pattern, self.monitor, self.stepsize),
            self.apply_settings,
            self.changes,
            name="panel:steer",
        )

    # -- widgets ------------------------------------------------------------------------------
    def _tools(self, fig: Any) -> None:
        box = BoxSelectTool(name="roi_box", description="draw an ROI box")
        poly = PolySelectTool(name="roi_poly", description="draw an ROI polygon")
        fig.add_tools(box, poly)
        fig.toolbar.active_drag = box
        self.outlines = ColumnDataSource({"xs": [], "ys": [], "name": [], "color": []}, name="rois")
        fig.patches("xs", "ys", source=self.outlines, fill_alpha=0.1, line_width=2, color="color")
        fig.on_event(SelectionGeometry, self._drawn)

    def _roi_widgets(self) -> None:
        self.mode = RadioButtonGroup(labels=["draw ROI", "draw mask"], active=0, name="draw_mode")
        self.roi_name = TextInput(title="next ROI name", value="", width=140, name="roi_name")
        self.clear_rois = Button(label="remove ROIs", width=110, name="clear_rois")
        self.clear_rois.on_click(lambda: self._request(roi_change(self._text(), [])))
        self.curve_source = ColumnDataSource(
            {"xs": [], "ys": [], "name": [], "color": []}, name="roi_curves"
        )
        self.curve_fig = figure(
            width=WIDTH,
            height=220,
            title="ROI sums (mean per train) vs scan",
            x_axis_label="scan value",
            tools="pan,wheel_zoom,box_zoom,reset,save",
            name="figure:roi_curves",
        )
        self.curve_fig.multi_line(
            "xs", "ys", source=self.curve_source, color="color", legend_field="name"
        )

    def _settings_widgets(self) -> None:
        raw = tomllib.loads(self._text())
        selector = next(
            (p for p in raw.get("processors", []) if p.get("type") == "frame_selector"), {}
        )
        rules = selector.get("rules") or [{}]
        self.pattern = TextInput(
            title="frame pattern", value=", ".join(selector.get("pattern", [])), width=260
        )
        self.monitor = NumericInput(
            title="monitor min", value=rules[0].get("min"), mode="float", width=110
        )
        self.stepsize = NumericInput(
            title="scan step",
            value=(raw.get("scan") or {}).get("stepsize"),
            mode="float",
            width=110,
        )
        self.apply_settings = Button(
            label="apply settings", button_type="primary", width=140, name="apply_settings"
        )
        self.apply_settings.on_click(self._apply_settings)

    def _show_settings(self, text: str) -> None:
        """The settings fields as the current version has them."""
        raw = tomllib.loads(text)
        selector = find_processor(raw, "frame_selector") or {}
        rules = selector.get("rules") or [{}]
        self.pattern.value = ", ".join(selector.get("pattern", []))
        self.monitor.value = rules[0].get("min")
        self.stepsize.value = (raw.get("scan") or {}).get("stepsize")
        for w, used in (
            (self.pattern, selector),
            (self.monitor, rules[0]),
            (self.stepsize, raw.get("scan")),
        ):
            w.disabled = not used

    # -- requests -----------------------------------------------------------------------------
    def _text(self) -> str:
        return self.control.current_config()[1]

    def _request(self, change: Change | Callable[[], Any]) -> None:
        """Send a change (or call a controller method) off the server's thread."""
        self.requests += 1
        doc = self.doc

        def work() -> None:
            try:
                out = self.control.apply(change) if isinstance(change, Change) else change()
                text = _describe(out)
            except ChangeError as e:
                text = f"<span style='color:#b00'>refused: {html.escape(str(e))}</span>"
            except Exception as e:  # the dashboard stays up; the message says what happened
                log.exception("dashboard control request failed")
                text = f"<span style='color:#b00'>{html.escape(type(e).__name__)}: {e}</span>"
            if doc is not None:
                try:
                    doc.add_next_tick_callback(lambda: setattr(self.message, "text", text))
                except Exception:  # the page was closed meanwhile: nobody to tell
                    log.debug("dashboard session gone before its control answer")

        threading.Thread(target=work, name="dashboard control", daemon=True).start()

    def _drawn(self, event: SelectionGeometry) -> None:
        if not event.final:
            return
        if self.mode.active == 1:
            self.masks.add_geometry(event.geometry)
            return
        rois = current_rois(self._text())
        taken = {r["name"] for r in rois}
        name = self.roi_name.value.strip() or next(
            f"roi{i}" for i in range(1, 1000) if f"roi{i}" not in taken
        )
        roi = roi_from_geometry(event.geometry, name)
        if roi is None:
            self.message.text = "that shape is too small for an ROI"
            return
        rois = [r for r in rois if r["name"] != name] + [roi]
        self.roi_name.value = ""
        self._request(roi_change(self._text(), rois))

    def _apply_settings(self) -> None:
        pattern = [s.strip() for s in self.pattern.value.split(",") if s.strip()] or None
        change = settings_change(
            self._text(),
            pattern=pattern,
            threshold=self.monitor.value,
            stepsize=self.stepsize.value,
        )
        if not change.set:
            self.message.text = "nothing changed"
            return
        self._request(change)

    # -- updating (the document's periodic callback) ------------------------------------------
    def update(self, slot: str | None) -> None:
        """Version, change log, ROI outlines and curves."""
        number, text = self.control.current_config()
        if number != self._shown_version:
            self._shown_version = number
            self._show_versions(number)
            rois = current_rois(text)
            if rois != self._rois:
                self._rois = rois
                self._curves = {r["name"]: {} for r in rois}
                xs, ys = zip(*(outline(r) for r in rois), strict=False) if rois else ((), ())
                self.outlines.data = {
                    "xs": list(xs),
                    "ys": list(ys),
                    "name": [r["name"] for r in rois],
                    "color": [OUTLINES[i % len(OUTLINES)] for i in range(len(rois))],
                }
            self._show_settings(text)
        self._add_records(slot)

    def _show_versions(self, number: int) -> None:
        versions = self.control.versions()
        current = next((v for v in versions if v["number"] == number), versions[-1])
        self.version.text = (
            f"<b>config version {number}</b> · segment {current['segment']} · "
            f"{len(versions)} version(s)"
        )
        rows = []
        for v in versions[-LOG_ROWS:][::-1]:
            when = time.strftime("%H:%M:%S", time.localtime(v.get("requested_at") or 0))
            first = v.get("first_train_id")
            rows.append(
                f"<tr><td>{v['number']}</td><td>{when}</td><td>{html.escape(v['kind'])}</td>"
                f"<td>{'' if first is None else first}</td>"
                f"<td>{html.escape(v.get('client', ''))}</td>"
                f"<td>{html.escape(v.get('change', '') or 'start')}</td></tr>"
            )
        self.changes.text = (
            "<table style='font-size:11px'><tr><th>ver</th><th>time</th><th>kind</th>"
            "<th>from train</th><th>client</th><th>change</th></tr>" + "".join(rows) + "</table>"
        )

    def _add_records(self, slot: str | None) -> None:
        if not self._rois:
            return
        records, self._record_seq, _ = self.hub.records_since(self._record_seq)
        slots = list(getattr(self.hub.latest_view(), "slots", ()) or ())
        changed = False
        for rec in records:
            x = rec.get("scan_value")
            x = float(rec.get("train_id", 0)) if x is None or not np.isfinite(x) else float(x)
            for name, points in self._curves.items():
                sums = rec.get(f"rois.{name}.sum")
                if sums is None:
                    continue
                k = slots.index(slot) if slot in slots else 0
                value = float(np.asarray(sums).ravel()[min(k, np.size(sums) - 1)])
                acc = points.setdefault(x, [0.0, 0])
                acc[0] += value
                acc[1] += 1
                changed = True
        if changed:
            names = list(self._curves)
            xs, ys = [], []
            for name in names:
                keys = sorted(self._curves[name])
                xs.append(keys)
                ys.append([self._curves[name][k][0] / self._curves[name][k][1] for k in keys])
            self.curve_source.data = {
                "xs": xs,
                "ys": ys,
                "name": names,
                "color": [COLORS[i % len(COLORS)] for i in range(len(names))],
            }


def _describe(out: dict[str, Any]) -> str:
    if out.get("unchanged"):
        return f"unchanged (version {out['number']})"
    if "kind" not in out:
        return html.escape(str(out))
    when = (
        f"from train {out['first_train_id']}"
        if out.get("applied")
        else "pending: applies at the next train"
    )
    return f"version {out['number']} ({html.escape(out['kind'])}): {when}"
