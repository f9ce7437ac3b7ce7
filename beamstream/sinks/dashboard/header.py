"""The page header: what runs, where its data comes from, and whether it is still coming.

One line a scientist reads at a glance: the title, a coloured connection state (waiting for data,
receiving, slow, stalled, run ended), the source endpoint, the last train id with its age (amber
when a few seconds old, red when the stream has stopped), and the config version. The same facts
are in the ``header_source`` ColumnDataSource (one row) for scripts and tests.
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass
from typing import Any

from bokeh.models import ColumnDataSource, Div

__all__ = ["HeaderPanel", "Connection", "connection_state", "STALE_AFTER"]

#: seconds without a train after which the age turns amber, then red
STALE_AFTER = (2.0, 10.0)
_COLOURS = {"ok": "#1a7f37", "amber": "#b35900", "red": "#c62828", "idle": "#57606a"}


@dataclass(frozen=True)
class Connection:
    """The connection state shown in the header.

    Attributes
    ----------
    state
        ``"waiting for data"``, ``"receiving"``, ``"slow"``, ``"stalled"`` or ``"run ended"``.
    level
        ``"ok"``, ``"amber"``, ``"red"`` or ``"idle"`` (the colour).
    age_s
        Seconds since the last train arrived (NaN before the first).
    """

    state: str
    level: str
    age_s: float


def connection_state(
    status: dict[str, Any],
    final: bool = False,
    now: float | None = None,
    stale_after: tuple[float, float] = STALE_AFTER,
) -> Connection:
    """The connection state from a run status (`beamstream.status.RunStatus.snapshot`)."""
    now = time.time() if now is None else now
    last = status.get("last_train_at")
    age = now - float(last) if isinstance(last, int | float) else math.nan
    if final:
        return Connection("run ended", "idle", age)
    if not status.get("received") or not math.isfinite(age):
        return Connection("waiting for data", "amber" if status else "idle", age)
    amber, red = stale_after
    if age >= red:
        return Connection("stalled", "red", age)
    if age >= amber:
        return Connection("slow", "amber", age)
    return Connection("receiving", "ok", age)


def _age_text(age: float) -> str:
    if not math.isfinite(age):
        return ""
    if age < 60:
        return f"{age:.1f} s ago"
    return f"{age / 60:.0f} min ago" if age < 3600 else f"{age / 3600:.1f} h ago"


class HeaderPanel:
    """Title, connection state, endpoint, last train id and age, config version."""

    def __init__(self, title: str, stale_after: tuple[float, float] = STALE_AFTER):
        self.title = title
        self.stale_after = stale_after
        self.div = Div(text=self._html(None, {}, {}), name="header", sizing_mode="stretch_width")
        self.source = ColumnDataSource(
            {"state": [""], "level": ["idle"], "last_train_id": [math.nan], "age_s": [math.nan]},
            name="header_source",
        )

    def update(self, status: dict[str, Any], info: dict[str, Any], final: bool = False) -> None:
        """Refresh from the hub's status and info (``source``, ``config_version`` keys)."""
        conn = connection_state(status, final, stale_after=self.stale_after)
        tid = status.get("last_train_id")
        self.source.data = {
            "state": [conn.state],
            "level": [conn.level],
            "last_train_id": [float(tid) if isinstance(tid, int) else math.nan],
            "age_s": [conn.age_s],
        }
        text = self._html(conn, status, info)
        if text != self.div.text:
            self.div.text = text

    def _html(self, conn: Connection | None, status: dict[str, Any], info: dict[str, Any]) -> str:
        esc = html.escape
        conn = conn or Connection("waiting for data", "idle", math.nan)
        colour = _COLOURS[conn.level]
        badge = (
            f"<span style='background:{colour};color:white;border-radius:4px;"
            f"padding:2px 8px;font-weight:bold'>{esc(conn.state)}</span>"
        )
        source = esc(str(info.get("source") or "—"))
        tid = status.get("last_train_id")
        if tid is None:
            last = "no train yet"
        else:
            age = _age_text(conn.age_s)
            last = f"last train <b>{tid}</b> <span style='color:{colour}'>{esc(age)}</span>"
        version = esc(str(info.get("config_version") or "—"))
        config = esc(str(info.get("config_name") or ""))
        cells = [badge, f"source <code>{source}</code>", last, f"config {config} version {version}"]
        sep = "<span style='color:#aaa;padding:0 10px'>|</span>"
        why = info.get("diagnosis") if not status.get("processed") else None
        note = (
            f"<div style='color:{_COLOURS['red']};padding-top:4px'>nothing processed: "
            f"{esc(str(why))}</div>"
            if why
            else ""
        )
        return (
            f"<div style='font-size:14px'><span style='font-size:20px;font-weight:bold;"
            f"padding-right:16px'>{esc(self.title)}</span>{sep.join(cells)}{note}</div>"
        )
