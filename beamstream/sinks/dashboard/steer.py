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
from pathlib import Path
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

from beamstream.control.edits import current_rois, mask_change, roi_change, settings_change
from beamstream.control.patch import Change, ChangeError
from beamstream.sinks.dashboard.views import COLORS, WIDTH

__all__ = ["SteerPanel", "roi_from_geometry"]

log = logging.getLogger(__name__)

LOG_ROWS = 12


def roi_from_geometry(geometry: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A region table from a Bokeh selection geometry (``rect`` or ``poly``), in pixels."""
    kind = geometry.get("type")
    if kind == "rect":
        x0, x1 = sorted((geometry["x0"], geometry["x1"]))
        y0, y1 = sorted((geometry["y0"], geometry["y1"]))
        box = [max(int(np.floor(x0)), 0), int(np.ceil(x1)), max(int(np.floor(y0)), 0)]
        box.append(int(np.ceil(y1)))
        return {"name": name, "box": box} if box[1] > box[0] and box[3] > box[2] else None
    if kind == "poly":
        xs, ys = list(geometry.get("x", [])), list(geometry.get("y", []))
        if len(xs) < 3:
            return None
        return {
            "name": name,
            "polygon": [[round(x, 2), round(y, 2)] for x, y in zip(xs, ys, strict=False)],
        }
    return None


def _outline(roi: dict[str, Any]) -> tuple[list[float], list[float]]:
    if "box" in roi:
        x0, x1, y0, y1 = roi["box"]
        return [x0, x1, x1, x0], [y0, y0, y1, y1]
    pts = roi["polygon"]
    return [p[0] for p in pts], [p[1] for p in pts]


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
        self.mask: np.ndarray | None = None
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
        self._mask_widgets()
        self._settings_widgets()
        self.layout = column(
            Div(text="<b>steer the run</b>"),
            self.version,
            self.message,
            row(self.mode, self.roi_name, self.clear_rois),
            self.curve_fig,
            row(self.threshold, self.from_threshold, self.clear_mask),
            row(self.mask_path, self.load_mask, self.save_mask, self.apply_mask),
            self.mask_info,
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

    def _mask_widgets(self) -> None:
        self.threshold = NumericInput(title="mask pixels above", value=None, width=130)
        self.from_threshold = Button(label="mask by threshold", width=140)
        self.from_threshold.on_click(self._threshold_mask)
        self.clear_mask = Button(label="clear mask", width=100)
        self.clear_mask.on_click(lambda: self._set_mask(None))
        self.mask_path = TextInput(title="mask file (.npy)", value="mask.npy", width=200)
        self.load_mask = Button(label="load", width=60)
        self.load_mask.on_click(self._load_mask)
        self.save_mask = Button(label="save", width=60)
        self.save_mask.on_click(lambda: self._save_mask())
        self.apply_mask = Button(label="apply mask", button_type="primary", width=110)
        self.apply_mask.on_click(self._apply_mask)
        self.mask_info = Div(text="mask: none", name="mask_info")

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
                doc.add_next_tick_callback(lambda: setattr(self.message, "text", text))

        threading.Thread(target=work, name="dashboard control", daemon=True).start()

    def _drawn(self, event: SelectionGeometry) -> None:
        if not event.final:
            return
        if self.mode.active == 1:
            self._mask_geometry(event.geometry)
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

    # -- mask ---------------------------------------------------------------------------------
    def _shape(self) -> tuple[int, ...] | None:
        img = self.latest_image()
        return None if img is None else img.shape

    def _set_mask(self, mask: np.ndarray | None) -> None:
        self.mask = mask
        n = 0 if mask is None else int(mask.sum())
        self.mask_info.text = "mask: none" if mask is None else f"mask: {n} pixels masked"

    def _mask_geometry(self, geometry: dict[str, Any]) -> None:
        shape = self._shape()
        roi = roi_from_geometry(geometry, "m")
        if shape is None or roi is None or "box" not in roi:
            self.message.text = "draw mask boxes on a detector image"
            return
        mask = self.mask if self.mask is not None else np.zeros(shape, bool)
        x0, x1, y0, y1 = roi["box"]
        mask = mask.copy()
        mask[y0:y1, x0:x1] = True
        self._set_mask(mask)

    def _threshold_mask(self) -> None:
        img = self.latest_image()
        if img is None or self.threshold.value is None:
            self.message.text = "a threshold needs a value and a latest image"
            return
        with np.errstate(invalid="ignore"):
            above = np.asarray(img) > float(self.threshold.value)
        self._set_mask(above if self.mask is None else self.mask | above)

    def _folder(self) -> Path:
        roots = getattr(self.control, "roots", None) or [Path.cwd()]
        return Path(roots[0])

    def _mask_file(self) -> Path | None:
        name = Path(self.mask_path.value.strip() or "mask.npy").name  # inside the output folder
        if not name.endswith(".npy"):
            self.message.text = "mask files are .npy"
            return None
        return self._folder() / name

    def _load_mask(self) -> None:
        path = self._mask_file()
        if path is None:
            return
        try:
            self._set_mask(np.load(path, allow_pickle=False).astype(bool))
        except (OSError, ValueError) as e:
            self.message.text = f"cannot load {html.escape(str(path))}: {html.escape(str(e))}"

    def _save_mask(self, name: str | None = None) -> Path | None:
        if self.mask is None:
            self.message.text = "no mask to save"
            return None
        path = self._folder() / name if name else self._mask_file()
        if path is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, self.mask)
        self.message.text = f"mask saved to {html.escape(str(path))}"
        return path

    def _apply_mask(self) -> None:
        path = self._save_mask(f"mask-{time.strftime('%Y%m%dT%H%M%S')}.npy")
        if path is not None:
            self._request(mask_change(self._text(), str(path.resolve())))

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
                xs, ys = zip(*(_outline(r) for r in rois), strict=False) if rois else ((), ())
                self.outlines.data = {
                    "xs": list(xs),
                    "ys": list(ys),
                    "name": [r["name"] for r in rois],
                    "color": [COLORS[i % len(COLORS)] for i in range(len(rois))],
                }
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
