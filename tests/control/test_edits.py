"""Edits the dashboard makes, as changes validated like any other."""

from __future__ import annotations

import tomllib

import numpy as np

from beamstream.config import parse_config
from beamstream.control.controller import Controller
from beamstream.control.edits import (
    current_rois,
    mask_change,
    roi_change,
    roi_from_geometry,
    settings_change,
)
from beamstream.control.validate import COMPATIBLE, NEW_SEGMENT

from .configs import DSSC


def test_roi_change_adds_a_records_only_processor_then_edits_it():
    ctl = Controller(parse_config(DSSC), wait=0)
    v = ctl.apply(roi_change(DSSC, [{"name": "p", "box": [0, 4, 0, 4]}]))
    assert v["kind"] == COMPATIBLE and v["change"] == "ROIs: p"
    ctl.next_switch(1)
    raw = tomllib.loads(ctl.current_config()[1])
    assert [p["type"] for p in raw["processors"]] == ["frame_selector", "roi", "scan_binner"]
    v = ctl.apply(roi_change(ctl.current_config()[1], []))
    assert v["kind"] == COMPATIBLE
    ctl.next_switch(2)
    assert current_rois(ctl.current_config()[1]) == []


def test_mask_change_and_settings_start_new_segments(tmp_path):
    np.save(tmp_path / "m.npy", np.zeros((128, 512), bool))
    cfg = parse_config(
        DSSC.replace(
            'layout = ["frame", "ss", "fs"]',
            'layout = ["frame", "ss", "fs"]\nframe_shape = [128, 512]',
        )
    )
    ctl = Controller(cfg, wait=0, roots=[tmp_path])
    v = ctl.apply(mask_change(cfg.text, str(tmp_path / "m.npy")))
    assert v["kind"] == NEW_SEGMENT
    ctl.next_switch(1)
    assert tomllib.loads(ctl.current_config()[1])["processors"][0]["type"] == "pixel_mask"
    change = settings_change(ctl.current_config()[1], pattern=["on", "off"], threshold=50.0)
    assert set(change.set) == {"processors.frames.pattern", "processors.frames.rules[0].min"}
    assert ctl.apply(change)["kind"] == NEW_SEGMENT
    assert not settings_change(DSSC, threshold=100.0, stepsize=0.01).set


def test_geometry_to_region():
    assert roi_from_geometry({"type": "rect", "x0": 7.6, "x1": 2.2, "y0": 1, "y1": 3}, "a") == {
        "name": "a",
        "box": [2, 8, 1, 3],
    }
    poly = roi_from_geometry({"type": "poly", "x": [0, 4, 0], "y": [0, 0, 4]}, "t")
    assert poly == {"name": "t", "polygon": [[0, 0], [4, 0], [0, 4]]}
    assert roi_from_geometry({"type": "point", "x": 1, "y": 1}, "a") is None


def test_mask_editor_builds_saves_and_applies_a_mask(tmp_path):
    from bokeh.models import Div

    from beamstream.sinks.dashboard.maskedit import MaskEditor

    class Ctl:
        roots = [tmp_path]

        def current_config(self):
            return 1, DSSC

    sent = []
    image = np.zeros((6, 8), np.float32)
    image[2, 3] = 50.0
    ed = MaskEditor(Ctl(), lambda: image, Div(), sent.append)
    ed.add_geometry({"type": "rect", "x0": 0, "x1": 2, "y0": 0, "y1": 1})
    ed.threshold.value = 10.0
    ed._threshold_mask()
    assert ed.mask.sum() == 3 and ed.mask[2, 3] and ed.mask[0, :2].all()
    ed.mask_path.value = "../../elsewhere/m.npy"  # only the name counts: the output folder
    ed._save_mask()
    assert (np.load(tmp_path / "m.npy") == ed.mask).all()
    ed._set_mask(None)
    ed._load_mask()
    assert ed.mask.sum() == 3
    ed._apply_mask()
    (change,) = sent
    assert change.note.startswith(f"pixel mask {tmp_path.resolve()}")
    assert "pixel_mask" in change.toml
