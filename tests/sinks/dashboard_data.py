"""Synthetic results, train views and document helpers shared by the dashboard tests."""

from __future__ import annotations

import numpy as np
from bokeh.document import Document

from beamstream.processors.base import Result, TrainView
from beamstream.sinks.dashboard.app import DashboardApp
from beamstream.sinks.hub import Hub
from beamstream.streamer.train import Train

KEYS = np.array([-1.0, 0.0, 2.0])
SLOTS = np.array(["pumped", "unpumped"])
Q = np.linspace(0.5, 5.0, 10)


def binner_results(scale: float = 1.0) -> dict[str, Result]:
    """ScanBinner-like results: mean (scan, slot, y, x), counts, pump_probe."""
    mean = np.zeros((3, 2, 8, 10))
    for i in range(3):
        mean[i, 0] = scale * (i + 1)  # pumped: 1, 2, 3 (x scale)
        mean[i, 1] = scale * 10.0  # unpumped: 10
    counts = np.array([[1, 1], [3, 3], [0, 0]])
    mean[2] = np.nan  # nothing counted in the last bin
    c = {"scan": KEYS, "slot": SLOTS}
    return {
        "mean": Result("mean", mean, ("scan", "slot", "y", "x"), c),
        "counts": Result("counts", counts, ("scan", "slot"), c),
        "pump_probe": Result(
            "pump_probe", mean[:, 0] - mean[:, 1], ("scan", "y", "x"), {"scan": KEYS}
        ),
    }


def qphi_results() -> dict[str, Result]:
    c = {"scan": KEYS, "slot": SLOTS, "q": Q}
    iq = np.broadcast_to(np.arange(10.0), (3, 2, 10)).copy()
    iq[:, 1] += 100
    return {
        "I_q": Result("I_q", iq, ("scan", "slot", "q"), c, coord_units={"q": "1/nm"}),
        "count_q": Result("count_q", np.ones((3, 2, 10)), ("scan", "slot", "q"), c),
        "sigma_q": Result("sigma_q", np.full((3, 2, 10), 0.5), ("scan", "slot", "q"), c),
        "I_qphi": Result(
            "I_qphi",
            np.ones((3, 2, 4, 10)),
            ("scan", "slot", "phi", "q"),
            {**c, "phi": np.array([45.0, 135, 225, 315])},
            coord_units={"q": "1/nm", "phi": "deg"},
        ),
    }


def view(tid: int, frames: np.ndarray, slots=("pumped", "unpumped")) -> TrainView:
    slot = np.arange(frames.shape[0]) % len(slots)
    return TrainView(Train(tid), frames=frames, frame_slot=slot, slots=tuple(slots))


def data(doc: Document, name: str) -> dict:
    model = doc.get_model_by_name(name)
    assert model is not None, f"no model named {name!r}"
    return model.data


def build(hub: Hub, **kw) -> tuple[DashboardApp, Document]:
    app = DashboardApp(hub, **kw)
    doc = Document()
    app.build(doc)
    return app, doc
