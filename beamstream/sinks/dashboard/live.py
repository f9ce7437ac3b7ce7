"""Panels fed by the live run rather than by results: latest image, per-train scalars, status."""

from __future__ import annotations

import collections
import html
import math
import time
from typing import Any

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Div, NumeralTickFormatter, Select
from bokeh.plotting import figure

from beamstream.sinks.dashboard import prep
from beamstream.sinks.dashboard.views import WIDTH, Controls, ImageView

__all__ = ["LatestImagePanel", "RecordsPanel", "StatusPanel", "latest_frames_image"]

#: status fields put into the ``status_source`` (one row), in this order
STATUS_FIELDS = (
    "processed",
    "last_train_id",
    "latest_train_id",
    "trains_per_s",
    "frames_per_s",
    "latency_p50_s",
    "latency_p99_s",
    "run_time_s",
    "epoch",
    "seq",
    "updated",
    "update",
)


def latest_frames_image(view: Any, slot: str | None) -> np.ndarray | None:
    """Mean of the latest train's accepted frames (of ``slot`` when it is a pattern slot)."""
    frames = getattr(view, "frames", None)
    if frames is None or frames.shape[0] == 0:
        return None
    idx = view.accepted()
    slots = tuple(getattr(view, "slots", ()))
    if slot in slots and view.frame_slot is not None:
        chosen = np.flatnonzero(view.frame_slot == slots.index(slot))
        idx = chosen if chosen.size else idx
    if idx.size == 0:
        idx = np.arange(frames.shape[0])
    if idx.size == 1:
        return np.asarray(frames[int(idx[0])], dtype=np.float32)
    if idx.size == frames.shape[0]:
        return frames.mean(axis=0, dtype=np.float32)
    return frames[idx].mean(axis=0, dtype=np.float32)


class LatestImagePanel:
    """The latest processed train's detector image (mean of its accepted frames)."""

    def __init__(self, mask: np.ndarray | None = None):
        self.image = ImageView("latest", "latest train", mask)
        self.image.fig.visible = False  # no placeholder image: a note until the first train
        self.waiting = Div(
            text="<i>waiting for data: the latest train's image appears here</i>",
            width=WIDTH,
            name="waiting:latest",
        )
        self.layout = column(self.waiting, self.image.fig, name="panel:latest")
        self.train_id: int | None = None
        self.last: np.ndarray | None = None  # the last image shown (full resolution)

    def update(self, view: Any, controls: Controls) -> bool:
        """Show ``view``'s frames; False when there is nothing to show."""
        img = latest_frames_image(view, controls.selection.slot)
        if img is None:
            return False
        self.last = img
        self.train_id = int(view.train_id)
        slot = controls.selection.slot
        slots = tuple(getattr(view, "slots", ()))
        what = f" slot={slot}" if slot in slots and len(slots) > 1 else ""
        # the train id is in the status panel: a title that changes every update would make
        # the browser lay the whole page out again each time
        self.image.fig.title.text = f"latest train{what}"
        self.image.show(img, controls, value_label="mean of frames")
        if not self.image.fig.visible:
            self.image.fig.visible, self.waiting.visible = True, False
        return True


class RecordsPanel:
    """Per-train scalars vs train id (rolling window), three plots with a choice of value each.

    Each train is a marker on the line while the window holds at most `MARKS_MAX` trains; with
    more, the line alone (thousands of markers are unreadable and costly to draw).
    """

    MARKS_MAX = 300

    DEFAULTS = ("accepted_frames", "frames", "scan_value")

    def __init__(self, history: int = 2000, plots: int = 3):
        self.history = int(history)
        self.columns: dict[str, collections.deque[float]] = {
            k: collections.deque(maxlen=self.history) for k in ("train_id", "train", *self.DEFAULTS)
        }
        #: the first train id: the x axes show train ids as offsets from it
        self.first_train: int | None = None
        #: plots whose value the user chose (never changed automatically)
        self.user_chosen: set[int] = set()
        self._auto_choice = False
        self._checked_at = 0
        self.source = ColumnDataSource({k: np.zeros(0) for k in self.columns}, name="records")
        self.selects: list[Select] = []
        self.figs = []
        self.marks: list[Any] = []
        x_range = None
        for i in range(plots):
            default = self.DEFAULTS[i] if i < len(self.DEFAULTS) else "train_id"
            sel = Select(title=f"value {i + 1}", value=default, options=[default], width=200)
            fig = figure(
                width=WIDTH,
                height=180,
                x_axis_label="trains since the first",
                y_axis_label=default,
                tools="pan,xwheel_zoom,box_zoom,reset,save",
                name=f"records:{i}",
                **({"x_range": x_range} if x_range is not None else {}),
            )
            x_range = fig.x_range
            # train ids are ~1e10: drawn as offsets from the first train (its id in the label)
            fig.xaxis.formatter = NumeralTickFormatter(format="0")
            fig.xaxis.ticker.min_interval = 1
            line = fig.line("train", default, source=self.source)
            marks = fig.scatter("train", default, source=self.source, size=3)
            self.marks.append(marks)
            sel.on_change("value", self._chooser(i, fig, line, marks))
            self.selects.append(sel)
            self.figs.append(fig)
        self.layout = column(
            *[row(f, s) for f, s in zip(self.figs, self.selects, strict=True)], name="panel:records"
        )

    def _offsets(self, rows: list[dict[str, float]]) -> None:
        """Add each row's ``train`` (train id minus the first train id seen)."""
        for r in rows:
            tid = r.get("train_id")
            if tid is None or not math.isfinite(tid):
                r["train"] = math.nan
                continue
            if self.first_train is None:
                self.first_train = int(tid)
                for fig in self.figs:
                    fig.xaxis.axis_label = f"train id − {self.first_train}"
            r["train"] = tid - self.first_train

    def _chooser(self, i: int, fig: Any, line: Any, marks: Any):  # noqa: ANN202 - a callback
        def choose(attr: str, old: str, new: str) -> None:
            if not self._auto_choice:
                self.user_chosen.add(i)
            line.glyph.y = new
            marks.glyph.y = new
            fig.yaxis.axis_label = new

        return choose

    def _replace_empty_defaults(self) -> None:
        """A plot on an automatic choice with no data (e.g. ``scan_value`` of a run without a
        scan), or with a constant value while another value varies (e.g. ``frames`` of a run
        with a fixed number of frames), switches to a varying value not shown yet (processor
        values first). A value the user chose stays."""

        def finite(k: str) -> list[float]:
            return [v for v in self.columns.get(k, ()) if math.isfinite(v)]

        def varies(k: str) -> bool:
            v = finite(k)
            return len(v) > 2 and min(v) != max(v)

        def rank(k: str) -> tuple[bool, bool, str]:  # varying values first, processor values next
            return (not varies(k), "." not in k, k)

        shown = {s.value for s in self.selects}
        spare = sorted(
            (
                k
                for k in self.columns
                if k not in shown and k not in ("train_id", "train", "timestamp") and finite(k)
            ),
            key=rank,
        )
        for i, sel in enumerate(self.selects):
            if i in self.user_chosen or not spare:
                continue
            if not finite(sel.value) or (not varies(sel.value) and varies(spare[0])):
                self._auto_choice = True
                try:
                    sel.value = spare.pop(0)
                finally:
                    self._auto_choice = False

    def add(self, records: list[dict[str, Any]], max_rows: int | None = None) -> None:
        """Append records (streamed to the browser; the whole table only when keys change).

        With more than ``max_rows`` new records (trains faster than the display updates, e.g. a
        replay at full speed) every k-th is kept, the newest always, so that an update costs
        the same at any train rate; at beamline rates every train is shown.
        """
        if max_rows is not None and len(records) > max_rows > 0:
            step = -(-len(records) // max_rows)
            records = records[::-1][::step][::-1]
        if not records:
            return
        rows = [prep.numeric_scalars(r) for r in records]
        self._offsets(rows)
        keys = set().union(*rows) | {"train_id", "train"}
        new_keys = keys - set(self.columns)
        n_old = len(self.columns.get("train_id", ()))
        for k in new_keys:
            self.columns[k] = collections.deque([math.nan] * n_old, maxlen=self.history)
        for r in rows:
            for k, col in self.columns.items():
                col.append(r.get(k, math.nan))
        if new_keys or len(self.source.data["train_id"]) == 0:
            self.source.data = {k: np.asarray(v) for k, v in self.columns.items()}
            options = sorted(k for k in self.columns if k not in ("train_id", "train"))
            options.append("train_id")
            for sel in self.selects:
                sel.options = options
            self._replace_empty_defaults()
        else:
            n = min(len(rows), self.history)
            new = {k: np.asarray(list(v)[-n:]) for k, v in self.columns.items()}
            self.source.stream(new, rollover=self.history)
            total = len(self.columns["train_id"])
            if total >= 2 * self._checked_at and total < self.history:  # now and then
                self._checked_at = total
                self._replace_empty_defaults()
        few = len(self.columns["train_id"]) <= self.MARKS_MAX
        for marks in self.marks:
            marks.visible = few  # Bokeh sends only a change


class StatusPanel:
    """Rates, drops by reason, latency, last train id, run time, output file, URL."""

    def __init__(self) -> None:
        self.div = Div(text="<b>waiting for data…</b>", width=WIDTH, name="status")
        self.source = ColumnDataSource({k: [math.nan] for k in STATUS_FIELDS}, name="status_source")
        self.layout = column(self.div, name="panel:status")

    def update(
        self,
        status: dict[str, Any],
        info: dict[str, Any],
        latest_id: int | None,
        seq: int,
        epoch: int,
        update: int = 0,
    ) -> None:
        """Show ``status`` and ``info``; ``update`` numbers the update (the page acknowledges)."""

        def ms(v: Any) -> str:
            return "-" if v is None else f"{1e3 * v:.1f} ms"

        def num(v: Any) -> float:
            return float(v) if isinstance(v, int | float) and v is not None else math.nan

        values = {k: num(status.get(k)) for k in STATUS_FIELDS}
        values.update(
            latest_train_id=num(latest_id),
            seq=float(seq),
            updated=time.time(),
            update=float(update),
        )
        values["epoch"] = num(status.get("epoch", epoch))
        self.source.data = {k: [v] for k, v in values.items()}
        drops = status.get("drops") or {}
        drop_txt = (
            ", ".join(f"{html.escape(str(k))}: {v}" for k, v in sorted(drops.items())) or "none"
        )
        items = [
            ("trains/s", f"{num(status.get('trains_per_s')):.1f}"),
            ("frames/s", f"{num(status.get('frames_per_s')):.0f}"),
            ("processed", status.get("processed", "-")),
            ("drops", drop_txt),
            (
                "latency p50 / p99",
                f"{ms(status.get('latency_p50_s'))} / {ms(status.get('latency_p99_s'))}",
            ),
            ("last train id", status.get("last_train_id", "-")),
            ("latest image", "-" if latest_id is None else f"train {latest_id}"),
            ("run time", f"{num(status.get('run_time_s')):.1f} s"),
            ("epoch", int(values["epoch"]) if math.isfinite(values["epoch"]) else epoch),
        ]
        for k, v in sorted(info.items()):
            if k not in ("dashboard_url", "source", "config_name", "config_version", "diagnosis"):
                items.append((str(k), v))
        cells = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(str(k))}</th>"
            f"<td>{v if k == 'drops' else html.escape(str(v))}</td></tr>"
            for k, v in items
        )
        self.div.text = f"<table>{cells}</table>"
