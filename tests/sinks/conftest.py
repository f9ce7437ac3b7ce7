"""Fixtures of the sink tests."""

from __future__ import annotations

import time

import numpy as np
import pytest

from beamstream.sinks.hub import Hub, Snapshot
from tests.sinks.dashboard_data import (
    binner_results,
    qphi_results,
    view,
)


@pytest.fixture
def hub() -> Hub:
    h = Hub()
    status = {
        "processed": 7,
        "last_train_id": 106,
        "trains_per_s": 10.0,
        "drops": {"rejected:x": 2},
        "latency_p50_s": 0.01,
        "latency_p99_s": 0.03,
        "run_time_s": 1.5,
    }
    h.publish(
        Snapshot(1, time.time(), {"binner": binner_results(), "qphi": qphi_results()}, {}, status)
    )
    for t in range(100, 107):
        h.add_record(
            {
                "train_id": t,
                "accepted_frames": t - 100,
                "scan_value": None,
                "frames": 4,
                "monitor": 2.0 * t,
                "vector": [1, 2],
            }
        )
    h.set_latest(view(106, np.arange(4 * 8 * 10, dtype=np.uint16).reshape(4, 8, 10)))
    h.info["output"] = "/data/results.h5"
    return h


@pytest.fixture
def userplugin_registered(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register tests.processors.userplugin:FrameTotals as an installed plug-in would be."""
    from importlib.metadata import EntryPoint

    from beamstream import plugins
    from beamstream.processors.registry import GROUP

    real = plugins.entry_points

    def with_extra(group: str) -> list[EntryPoint]:
        found = list(real(group=group))
        return [*found, EntryPoint("frame_totals", value, GROUP)] if group == GROUP else found

    value = "tests.processors.userplugin:FrameTotals"
    monkeypatch.setattr(plugins, "entry_points", with_extra)
    return value
