"""Linear, log-y or log-log axes for a curve panel, switched in place by a button group."""

from __future__ import annotations

from typing import Any

from bokeh.models import (
    BasicTicker,
    LinearScale,
    LogScale,
    LogTicker,
    LogTickFormatter,
    RadioButtonGroup,
)

from beamstream.processors.base import Result
from beamstream.sinks.dashboard.prep import Kind
from beamstream.sinks.dashboard.views import readable_numbers

__all__ = ["AxisScale", "AXES", "default_axes"]

#: the choices, in the order of the buttons
AXES = ("linear", "log y", "log-log")
#: curve dims drawn on a log intensity axis by default (I(q) spans decades)
LOG_Y_DIMS = ("q", "q_1d", "two_theta")


def default_axes(res: Result, kind: Kind) -> str:
    """``"log y"`` for intensities vs q (I(q) spans decades), else ``"linear"``."""
    if kind.kind == "curve" and kind.data_dims and kind.data_dims[0] in LOG_Y_DIMS:
        return "log y"
    return "linear"


class AxisScale:
    """The axes choice of one figure: a `RadioButtonGroup` named ``axes:<key>``."""

    def __init__(self, fig: Any, key: str, default: str = "linear"):
        self.fig = fig
        self.widget = RadioButtonGroup(
            labels=list(AXES), active=AXES.index(default), name=f"axes:{key}"
        )
        self.widget.on_change("active", lambda attr, old, new: self.apply(AXES[new]))
        self.apply(default)

    @property
    def choice(self) -> str:
        return AXES[self.widget.active]

    def apply(self, choice: str) -> None:
        """Set both axes' scales, tickers and formatters for ``choice``."""
        _axis(self.fig, "y", log=choice in ("log y", "log-log"))
        _axis(self.fig, "x", log=choice == "log-log")


def _axis(fig: Any, which: str, log: bool) -> None:
    scale_attr = f"{which}_scale"
    axis = fig.yaxis[0] if which == "y" else fig.xaxis[0]
    if isinstance(getattr(fig, scale_attr), LogScale) == log:
        return
    setattr(fig, scale_attr, LogScale() if log else LinearScale())
    axis.ticker = LogTicker() if log else BasicTicker()
    axis.formatter = LogTickFormatter() if log else readable_numbers()
