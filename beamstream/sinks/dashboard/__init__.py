"""The live Bokeh dashboard (`DashboardSink`) and the static HTML report of a results file.

``DashboardSink(port=0, update_hz=4, on_reset=runner.reset, title=...)`` serves a Bokeh app whose
panels are chosen from the dims of the results present; ``beamstream report RESULTS.h5`` writes
the same panels as one standalone HTML file. See ``docs/dashboard.md``.
"""

from beamstream.sinks.dashboard.sink import (
    DEFAULT_PORT,
    DashboardSink,
    connect_control,
    connect_reset,
    dashboard_sinks,
    load_mask,
)

__all__ = [
    "DashboardSink",
    "load_mask",
    "dashboard_sinks",
    "connect_reset",
    "connect_control",
    "DEFAULT_PORT",
]
