"""Dashboard and report images of module data: assembled by extra-geom when there is a geometry."""

from __future__ import annotations

import extra_geom
import numpy as np
import pytest

from beamstream.processors.base import Result
from beamstream.sinks.dashboard import assembled
from beamstream.sinks.dashboard.panels import make_panel
from beamstream.sinks.dashboard.prep import Selection
from beamstream.sinks.dashboard.views import Controls

QUADS = [[-130, 5], [-130, -125], [5, -125], [5, 5]]
CONFIG = f"""
version = 1
[source]
detector = "SCS_DET_DSSC1M-1/DET/{{module}}CH0:xtdf"
modules = "0-15"
geometry = {{ detector = "DSSC_1M", quad_positions = {QUADS} }}
"""


@pytest.fixture
def dssc_geometry():
    assembled.use_config(CONFIG)
    yield extra_geom.DSSC_1MGeometry.from_quad_positions([tuple(q) for q in QUADS])
    assembled.use_config("")


def test_module_images_assembled_with_gaps(dssc_geometry) -> None:
    rng = np.random.default_rng(0)
    img = rng.random((16, 128, 512)).astype(np.float32)
    shown, placed = assembled.to_display(img)
    ref, _ = dssc_geometry.position_modules(img)
    assert placed
    np.testing.assert_array_equal(shown, ref)
    again, _ = assembled.to_display(img[::-1].copy())
    assert again is shown  # the display buffer is reused
    # other shapes are stacked as before
    flat, placed = assembled.to_display(img[:4])
    assert not placed and flat.shape == (4 * 128, 512)


def test_binned_mean_panel_draws_the_assembled_detector(dssc_geometry) -> None:
    mean = np.random.default_rng(1).random((1, 2, 16, 128, 512))
    res = Result(
        "mean",
        mean,
        ("scan", "slot", "module", "y", "x"),
        {"scan": np.array([0.0]), "slot": np.array(["pumped", "unpumped"])},
    )
    panel = make_panel("binned", res)
    panel.update({"mean": res}, Controls(Selection(None, "unpumped"), max_image=4096))
    drawn = panel.image.source.data["image"][0]
    ref, _ = dssc_geometry.position_modules(mean[0, 1].astype(np.float32))
    assert panel.image.shape == ref.shape  # the detector's aspect, gaps included
    np.testing.assert_allclose(drawn, ref, equal_nan=True)
    assembled.use_config("")
    panel.update({"mean": res}, Controls(Selection(None, "unpumped"), max_image=4096))
    assert panel.image.shape == (16 * 128, 512)  # no geometry: modules stacked along y


def test_bad_geometry_falls_back_to_stacked_modules(caplog) -> None:
    assembled.use_config(CONFIG.replace("DSSC_1M", "NOPE"))
    try:
        assert assembled.current_geometry() is None
        assert "no assembled images" in caplog.text
    finally:
        assembled.use_config("")
