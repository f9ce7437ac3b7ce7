"""`DashboardApp`: the Bokeh document of one browser session, fed from the `Hub`.

A periodic callback (``update_hz`` times a second, in the Bokeh server's thread) reads the hub:
its status, the new per-train records, the latest processed train and the latest snapshot. It
never holds a lock the processing thread waits for (the hub's own short lock aside), and all
copying, averaging and decimation happens here, outside the processing thread. Panels for
results are created the first time a result appears, chosen by the result's dims.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bokeh.document import Document
from bokeh.layouts import column, row
from bokeh.models import (
    Button,
    ColumnDataSource,
    CustomJS,
    DataRange1d,
    Div,
    NumericInput,
    RadioButtonGroup,
    RangeSlider,
    Select,
    Toggle,
)

from beamstream.sinks.dashboard.budget import UpdateBudget
from beamstream.sinks.dashboard.header import STALE_AFTER, HeaderPanel
from beamstream.sinks.dashboard.live import LatestImagePanel, RecordsPanel, StatusPanel
from beamstream.sinks.dashboard.panels import LinesPanel, Panel, make_panel
from beamstream.sinks.dashboard.prep import Selection, short_name
from beamstream.sinks.dashboard.steer import SteerPanel
from beamstream.sinks.dashboard.views import Controls
from beamstream.sinks.hub import Hub

__all__ = ["DashboardApp", "LATEST_PRODUCTS"]

log = logging.getLogger(__name__)

#: result short name -> per-train product (``view.products["<processor>.<product>"]``, frames
#: first) drawn as the "latest train" curve of that result's panel
LATEST_PRODUCTS = {"I_q": "iq"}
#: seconds without the browser's acknowledgement after which the next update is sent anyway
ACK_TIMEOUT = 3.0
#: most per-train records drawn per update (more are thinned to every k-th train)
RECORDS_PER_UPDATE = 200
#: the browser acknowledges an update once it has been drawn (after the next animation frame)
ACK_JS = """
const u = st.data.update[0];
requestAnimationFrame(() => setTimeout(() => { ack.data = {update: [u]}; }, 0));
"""
ALL = "all"


def browser_owned_ranges(layout: Any) -> None:
    """Keep the plots' auto-ranges in the browser: it recomputes them after every data change
    and would otherwise send each new start and end back to the server (a dozen messages per
    update that nothing on the server reads)."""
    for rng in layout.select({"type": DataRange1d}):
        rng.syncable = False


class DashboardApp:
    """Build and update one dashboard document.

    Parameters
    ----------
    hub
        The run's hub (read only, except for nothing: the dashboard never writes to it).
    update_hz
        How often the document is refreshed from the hub (clamped to 0.2..10 Hz).
    on_reset
        Called (in the server thread) by the "reset accumulation" button, e.g. ``runner.reset``;
        the button is disabled when None.
    title
        The page title.
    mask
        Detector pixel mask (True/1 = masked), ``(y, x)`` or ``(module, y, x)``, drawn over
        detector images of the same shape.
    max_image
        Largest side of a displayed image (larger images are block-averaged).
    history
        Per-train records kept for the scalar plots.
    control
        The run's `beamstream.control.controller.Controller`: adds the steering panel (ROIs,
        mask editor, settings, version and change log; see `SteerPanel`).
    reset_allowed
        False for a session opened without the run's control token: its reset button is
        disabled, and a click sent anyway is refused and reported to ``on_refused``.
    stale_after
        Seconds without a train after which the header's train age turns amber, then red.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        update_hz: float = 4.0,
        on_reset: Callable[[], None] | None = None,
        title: str = "beamstream",
        mask: np.ndarray | None = None,
        max_image: int = 512,
        history: int = 2000,
        control: Any = None,
        reset_allowed: bool = True,
        on_refused: Callable[[], None] | None = None,
        stale_after: tuple[float, float] = STALE_AFTER,
    ):
        self.hub = hub
        self.control = control
        self.reset_allowed = reset_allowed
        self.on_refused = on_refused
        self.stale_after = stale_after
        self.update_hz = min(max(float(update_hz), 0.2), 10.0)
        self.on_reset = on_reset
        self.title = title
        self.mask = mask
        self.history = history
        self.controls = Controls(max_image=max_image)
        self.panels: dict[str, Panel | None] = {}
        self.update_seconds: collections.deque[float] = collections.deque(maxlen=200)
        self.resets = 0
        #: flow control: updates sent, and the last one the browser has drawn (see `_ack_js`)
        self.sent = 0
        self.acked = 0
        self.skipped = 0
        self.throttled = 0
        #: paces updates while processing is saturated (see `UpdateBudget`)
        self.budget = UpdateBudget()
        self._built = False
        #: when the last sent update's callback ended, and whether it built new panels
        self._done_at = 0.0
        self._last_built = False
        self._sent_at = 0.0
        self._record_seq = 0
        self._snap_seq = -1
        self._view: Any = None
        self._dirty = False
        self._updating = False
        self._scan_labels: dict[str, float] = {}
        self.doc: Document | None = None
        self._build_widgets()

    # -- layout -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.reset_button = Button(
            label="reset accumulation" if self.reset_allowed else "reset: needs the run's URL",
            button_type="warning",
            width=170,
            disabled=self.on_reset is None or not self.reset_allowed,
            name="reset",
        )
        self.reset_button.on_click(self._reset)
        self.pause = Toggle(label="pause display", width=120, name="pause")
        self.pause.on_change("active", self._changed)
        self.scan = Select(
            title="scan bin", value=ALL, options=[ALL], width=120, name="scan", visible=False
        )
        self.slot = Select(
            title="slot", value="", options=[""], width=140, name="slot", visible=False
        )
        self.scale = RadioButtonGroup(labels=["linear", "log"], active=0, name="scale")
        self.levels = RadioButtonGroup(labels=["auto", "fixed"], active=0, name="levels")
        self.low = NumericInput(title="low", value=0, mode="float", width=90, visible=False)
        self.high = NumericInput(title="high", value=1000, mode="float", width=90, visible=False)
        self.roi_x = RangeSlider(title="ROI x", start=0, end=1, value=(0, 1), step=1, width=220)
        self.roi_y = RangeSlider(title="ROI y", start=0, end=1, value=(0, 1), step=1, width=220)
        for w in (self.scan, self.slot, self.low, self.high):
            w.on_change("value", self._changed)
        for w in (self.scale, self.levels):
            w.on_change("active", self._changed)
        for w in (self.roi_x, self.roi_y):
            w.on_change("value_throttled", self._changed)
        self.header = HeaderPanel(self.title, self.stale_after)
        self.roi_box = column(self.roi_x, self.roi_y, visible=False)
        self.status = StatusPanel()
        self.ack = ColumnDataSource({"update": [0]}, name="ack")
        self.ack.on_change("data", self._acked)
        self.status.source.js_on_change(
            "data", CustomJS(args={"st": self.status.source, "ack": self.ack}, code=ACK_JS)
        )
        self.latest = LatestImagePanel(self.mask)
        self.records = RecordsPanel(self.history)
        self.steer = (
            SteerPanel(self.control, self.hub, self.latest.image.fig, lambda: self.latest.last)
            if self.control is not None
            else None
        )
        self.results_box = row(
            Div(text="<i>waiting for results…</i>"),
            name="results",
            sizing_mode="stretch_width",
            styles={"flex-wrap": "wrap", "gap": "12px"},
        )

    def build(self, doc: Document) -> Document:
        """Lay the panels out in ``doc`` and add the periodic update callback."""
        self.doc = doc
        if self.steer is not None:
            self.steer.doc = doc
        doc.title = self.title
        colour = column(Div(text="colour"), self.scale, self.levels)
        controls = row(
            self.reset_button,
            self.pause,
            self.scan,
            self.slot,
            colour,
            self.low,
            self.high,
            self.roi_box,
            name="controls",
        )
        doc.add_root(
            column(
                self.header.div,
                controls,
                row(self.status.layout, self.latest.layout),
                *([self.steer.layout] if self.steer is not None else []),
                self.records.layout,
                self.results_box,
                name="dashboard",
            )
        )
        browser_owned_ranges(doc.roots[0])
        doc.add_root(self.header.source)
        doc.add_root(self.status.source)  # data-only roots: read by scripts and tests, and
        doc.add_root(self.ack)  # written by the browser once it has drawn an update
        doc.add_periodic_callback(self.update, int(1000 / self.update_hz))
        with doc.models.freeze():  # the first update adds most models: recompute once
            self.update()
        return doc

    # -- controls -----------------------------------------------------------------------------
    def _reset(self) -> None:
        if not self.reset_allowed:
            log.warning("dashboard: reset refused (a session without the run's control token)")
            if self.on_refused is not None:
                self.on_refused()
            return
        if self.on_reset is not None:
            self.resets += 1
            self.on_reset()

    def _changed(self, attr: str, old: Any, new: Any) -> None:
        scan = self._scan_labels.get(self.scan.value) if self.scan.value != ALL else None
        c = self.controls
        c.selection = Selection(scan=scan, slot=self.slot.value or None)
        c.scale = "log" if self.scale.active == 1 else "linear"
        lo, hi = self.low.value, self.high.value
        c.levels = (
            (float(lo), float(hi)) if self.levels.active == 1 and None not in (lo, hi) else None
        )
        if self.roi_x.end > 1 or self.roi_y.end > 1:
            (x0, x1), (y0, y1) = self.roi_x.value, self.roi_y.value
            c.roi = (int(x0), int(x1), int(y0), int(y1))
        self._dirty = True
        if not self._updating:  # programmatic changes during an update only mark it dirty
            self._applicable_controls()
            self.update()

    # -- updating -----------------------------------------------------------------------------
    def update(self) -> None:
        """Read the hub once and refresh what changed (the periodic callback).

        Updates keep within a CPU budget (`UpdateBudget`): while processing is saturated
        (``hub.busy`` near 1) they and the page's drawing take a small share of a core (fewer
        updates per second, but at least one every few seconds), so plots never throttle
        processing; at beamline rates (processing mostly idle) every periodic callback updates.
        """
        t0 = time.perf_counter()
        if not self.budget.allows(t0) and not self._dirty:
            self.throttled += 1
            return
        self._updating, self._built = True, False
        sent = self.sent
        try:
            self._update()
        except Exception:  # a display problem must never end the session's updates
            log.exception("dashboard update failed")
        finally:
            self._updating = False
        cost = time.perf_counter() - t0
        if self.sent == sent:  # waited for the browser: nothing sent, nothing to account
            return
        self._done_at, self._last_built = time.monotonic(), self._built
        self.update_seconds.append(cost)
        self.budget.spent(t0, cost, float(getattr(self.hub, "busy", 0.0)), one_off=self._built)

    def _acked(self, attr: str, old: Any, new: Any) -> None:
        try:
            n = int(new["update"][0])
        except (KeyError, IndexError, TypeError, ValueError):
            return
        if n == self.sent > self.acked and self._done_at and not self._last_built:
            self.budget.answered(time.monotonic() - self._done_at)  # the page's part of the cost
        self.acked = max(self.acked, n)

    def _update(self) -> None:
        # at most one update in flight once the browser acknowledges (a slow browser gets fewer,
        # fresher updates instead of a growing backlog); resend after ACK_TIMEOUT regardless
        waiting = self.acked > 0 and self.acked < self.sent
        if waiting and time.monotonic() - self._sent_at < ACK_TIMEOUT:
            self.skipped += 1
            return
        self.sent += 1
        self._sent_at = time.monotonic()
        hub = self.hub
        snap = hub.latest()
        view = hub.latest_view()
        latest_id = int(view.train_id) if view is not None else None
        seq = snap.seq if snap is not None else 0
        epoch = snap.epoch if snap is not None else 0
        status, info = hub.status(), dict(hub.info)
        self.header.update(status, info, final=bool(snap is not None and snap.final))
        self.status.update(status, info, latest_id, seq, epoch, self.sent)
        if self.pause.active:
            return
        records, self._record_seq, _ = hub.records_since(self._record_seq)
        self.records.add(records[-self.history :], RECORDS_PER_UPDATE)
        dirty, self._dirty = self._dirty, False
        new_view = view is not None and (view is not self._view or dirty)
        if new_view:
            self._view = view
            self._slot_options(tuple(getattr(view, "slots", ())))  # before drawing: sets a slot
            if self.latest.update(view, self.controls):
                self._init_roi(self.latest.image.shape)
        if snap is not None and (snap.seq != self._snap_seq or dirty):
            self._snap_seq = snap.seq
            self._update_results(snap.results)
        if new_view:
            self._latest_curves(view, snap)
        if self.steer is not None:
            self.steer.update(self.controls.selection.slot)

    def _update_results(self, results: dict[str, dict[str, Any]]) -> None:
        keys: set[float] = set()
        slots: list[str] = []
        new = []
        for proc, named in results.items():
            for name, res in named.items():
                key = f"{proc}.{name}"
                if key not in self.panels:
                    panel = make_panel(proc, res, self.mask)
                    self.panels[key] = panel
                    if panel is not None:
                        new.append(panel.layout)
                if "scan" in res.coords:
                    keys.update(float(k) for k in np.asarray(res.coords["scan"]).ravel())
                slots += [str(s) for s in res.coords.get("slot", ()) if str(s) not in slots]
        if new:
            self._built = True
            for layout in new:
                browser_owned_ranges(layout)
            old = [c for c in self.results_box.children if not isinstance(c, Div)]
            if self.doc is not None:
                with self.doc.models.freeze():  # one model-graph recompute for all new panels
                    self.results_box.children = [*old, *new]
            else:
                self.results_box.children = [*old, *new]
        self._scan_options(keys, results)
        self._slot_options(tuple(slots))
        self._applicable_controls()
        for proc, named in results.items():
            for name in named:
                panel = self.panels.get(f"{proc}.{name}")
                if panel is None:
                    continue
                try:  # one result that cannot be drawn must not blank the others
                    panel.update(named, self.controls)
                except Exception:
                    log.exception("dashboard panel %s failed", panel.key)
                    continue
                if panel.kind.kind == "image":
                    self._init_roi(getattr(getattr(panel, "image", None), "shape", None))

    def _applicable_controls(self) -> None:
        """Show a control only where something on the page uses it."""
        from beamstream.sinks.dashboard.panels import PumpProbePanel

        roi = any(isinstance(p, PumpProbePanel) for p in self.panels.values())
        shown = {
            self.scan: len(self.scan.options) > 2,  # "all" and at least two bins
            self.slot: len([o for o in self.slot.options if o]) > 1,
            self.roi_box: roi,
            self.low: self.levels.active == 1,
            self.high: self.levels.active == 1,
        }
        for widget, visible in shown.items():
            if widget.visible != visible:
                widget.visible = visible

    def _scan_options(self, keys: set[float], results: dict[str, dict[str, Any]]) -> None:
        labels = {f"{k:g}": k for k in sorted(keys)}
        if list(labels) != list(self._scan_labels):
            self._scan_labels = labels
            self.scan.options = [ALL, *labels]

    def _slot_options(self, slots: tuple[str, ...]) -> None:
        if not slots:
            return
        options = [s for s in self.slot.options if s] + [
            s for s in slots if s not in self.slot.options
        ]
        if options != self.slot.options:
            self.slot.options = options
        if not self.slot.value:
            self.slot.value = options[0]

    def _init_roi(self, shape: tuple[int, int] | None) -> None:
        """Give the ROI sliders the detector's extent the first time an image is known."""
        if shape is None or self.roi_x.end > 1 or self.roi_y.end > 1:
            return
        ny, nx = shape
        self.roi_x.update(end=nx, value=(0, nx))
        self.roi_y.update(end=ny, value=(0, ny))
        self.controls.roi = (0, nx, 0, ny)

    def _latest_curves(self, view: Any, snap: Any) -> None:
        for panel in self.panels.values():
            if not isinstance(panel, LinesPanel) or panel.kind.kind != "curve":
                continue
            product = LATEST_PRODUCTS.get(short_name(panel.result))
            arr = view.products.get(f"{panel.proc}.{product}") if product else None
            if arr is None or np.ndim(arr) != 2:
                panel.show_latest(None, None)
                continue
            frames = np.asarray(arr)
            slot = self.controls.selection.slot
            slots = tuple(getattr(view, "slots", ()))
            if (
                slot in slots
                and view.frame_slot is not None
                and len(view.frame_slot) == len(frames)
            ):
                sel = frames[view.frame_slot == slots.index(slot)]
                frames = sel if len(sel) else frames
            with np.errstate(invalid="ignore"):
                y = np.nanmean(frames, axis=0) if len(frames) else None
            res = snap.results.get(panel.proc, {}).get(panel.result) if snap is not None else None
            x = None if res is None else res.coords.get(panel.kind.data_dims[0])
            if x is not None and y is not None and len(x) == len(y):
                panel.show_latest(x, y)
