"""The live Bokeh dashboard (`DashboardSink`) and the static HTML report of a results file.

``DashboardSink(port=0, update_hz=4, on_reset=runner.reset, title=...)`` serves a Bokeh app whose
panels are chosen from the dims of the results present; ``beamstream report RESULTS.h5`` writes
the same panels as one standalone HTML file. See ``docs/dashboard.md``.
"""

from typing import Any

__all__ = [
    "DashboardSink",
    "load_mask",
    "dashboard_sinks",
    "connect_reset",
    "connect_control",
    "DEFAULT_PORT",
]


def __getattr__(name: str) -> Any:
    """Bokeh is imported when the dashboard is used, not when the command line is built."""
    if name in __all__:
        from beamstream.sinks.dashboard import sink

        return getattr(sink, name)
    raise AttributeError(name)
