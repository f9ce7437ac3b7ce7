"""Regions of interest (records only) and the static pixel mask."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.base import TrainView
from beamstream.processors.params import ParamError
from beamstream.processors.pixelmask import PixelMask
from beamstream.processors.roi import RegionsOfInterest, polygon_mask
from beamstream.streamer.train import Train


def _view(frames: np.ndarray, slot: np.ndarray | None = None, slots=("a", "b")) -> TrainView:
    return TrainView(Train(1, 0.0, {}), frames=frames, frame_slot=slot, slots=slots)


def test_box_and_polygon_sums_and_means_per_slot():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 100, (6, 10, 12)).astype(np.uint16)
    slot = np.array([0, 1, 0, 1, -1, 0])
    tri = [[0, 0], [8, 0], [0, 8]]
    roi = RegionsOfInterest(
        rois=[{"name": "b", "box": [2, 5, 1, 4]}, {"name": "t", "polygon": tri}], slots=("a", "b")
    )
    rec = roi(_view(frames, slot)).records
    f = frames.astype(np.float64)
    for s in (0, 1):
        sel = f[slot == s]
        assert rec["rois.b.sum"][s] == sel[:, 1:4, 2:5].sum()
        assert rec["rois.b.mean"][s] == pytest.approx(sel[:, 1:4, 2:5].mean())
    inside = np.array([[x + 0.5 + y + 0.5 < 8 for x in range(12)] for y in range(10)])
    assert (polygon_mask(np.asarray(tri, float), 10, 12) == inside).all()
    assert rec["rois.t.sum"][0] == f[slot == 0][:, inside].sum()


def test_nan_pixels_are_neither_summed_nor_counted():
    frames = np.ones((2, 4, 4), np.float32)
    frames[0, 0, 0] = np.nan
    rec = RegionsOfInterest(rois=[{"name": "all", "box": [0, 4, 0, 4]}])(
        _view(frames, None, ("image",))
    ).records
    assert rec["rois.all.sum"][0] == 31 and rec["rois.all.mean"][0] == 1.0


@pytest.mark.parametrize(
    "rois, where",
    [
        ([{"name": "a", "box": [5, 2, 0, 1]}], "rois[0].box"),
        ([{"name": "a b", "box": [0, 1, 0, 1]}], "rois[0].name"),
        ([{"name": "a", "polygon": [[0, 0], [1, 1]]}], "rois[0].polygon"),
        ([{"name": "a", "box": [0, 1, 0, 1], "polygon": [[0, 0]] * 3}], "rois[0]"),
        ([{"name": "a", "box": [0, 1, 0, 1]}, {"name": "a", "box": [0, 2, 0, 2]}], "rois"),
        ([{"name": "a", "circle": 3}], "rois[0].circle"),
    ],
)
def test_bad_regions_are_located(rois, where):
    with pytest.raises(ParamError) as e:
        RegionsOfInterest(rois=rois)
    assert e.value.key == where


def test_pixel_mask_sets_nan(tmp_path):
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    np.save(tmp_path / "m.npy", mask)
    pm = PixelMask(mask=str(tmp_path / "m.npy"), frame_shape=[4, 5])
    out = pm(_view(np.ones((3, 4, 5), np.uint16))).frames
    assert out.dtype == np.float32 and np.isnan(out[:, 1, 2]).all() and np.isnan(out).sum() == 3
    with pytest.raises(ParamError, match="shape"):
        PixelMask(mask=str(tmp_path / "m.npy"), frame_shape=[8, 8])
    np.save(tmp_path / "bad.npy", np.full((4, 5), 3))
    with pytest.raises(ParamError, match="0 and 1"):
        PixelMask(mask=str(tmp_path / "bad.npy"))
