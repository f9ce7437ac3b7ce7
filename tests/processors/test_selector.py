"""FrameSelector: pattern slots, max_frames, mask files, monitor rules, rejections."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from beamstream.processors.base import Rejected, TrainView
from beamstream.processors.params import ParamError
from beamstream.processors.selector import FrameSelector, calc_xgm_frame_indices
from beamstream.streamer.train import Train

PP_DARK = ["pumped", "pumped_dark", "unpumped", "unpumped_dark"]
XGM = "SA3_XTD10_XGM/XGM/DOOCS:output"
XGM_KEY = "data.intensityTD"


def view(tid: int = 1, nf: int = 8, xgm=None) -> TrainView:
    data = {} if xgm is None else {XGM: {XGM_KEY: np.asarray(xgm, dtype=np.float32)}}
    frames = None if nf is None else np.zeros((nf, 2, 3), np.uint16)
    return TrainView(Train(tid, data=data), frames=frames)


def reason(sel: FrameSelector, v: TrainView) -> str:
    with pytest.raises(Rejected) as info:
        sel(v)
    return info.value.reason


def write_npz(path, train_ids, mask):
    np.savez(path, train_ids=np.asarray(train_ids), mask=np.asarray(mask))
    return str(path)


# -- pulse -> frame mapping -------------------------------------------------------------------
def test_calc_xgm_frame_indices_like_dssc_process():
    np.testing.assert_array_equal(calc_xgm_frame_indices(4, PP_DARK), [0, 2, 4, 6])
    np.testing.assert_array_equal(calc_xgm_frame_indices(3, PP_DARK), [0, 2, 4])
    np.testing.assert_array_equal(calc_xgm_frame_indices(5, ["image"]), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(calc_xgm_frame_indices(4, ["pumped", "unpumped"]), [0, 1, 2, 3])
    np.testing.assert_array_equal(calc_xgm_frame_indices(2, ["dark", "image"]), [1, 3])
    assert calc_xgm_frame_indices(4, ["dark"]).size == 0
    # a quirk kept from dssc_process: more frames than pulses for some patterns
    np.testing.assert_array_equal(
        calc_xgm_frame_indices(1, ["a", "b", "d1_dark", "d2_dark"]), [0, 1]
    )


def test_more_mapped_frames_than_pulses_uses_one_value_per_pulse():
    rule = {"source": XGM, "key": XGM_KEY, "min": 1}
    sel = FrameSelector(pattern=["a", "b", "d1_dark", "d2_dark"], rules=[rule])
    v = sel(view(nf=4, xgm=[5.0]))
    np.testing.assert_array_equal(v.products["monitor"], [5.0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(v.frame_slot, [0, -1, 2, 3])
    v = view(nf=4)
    v.train.data[XGM] = {XGM_KEY: "n/a"}
    assert reason(sel, v) == "monitor not a number"


# -- slots and max_frames ---------------------------------------------------------------------
def test_slots_repeat_along_frames_and_incomplete_last_repeat():
    sel = FrameSelector(pattern=PP_DARK)
    v = sel(view(nf=6))
    np.testing.assert_array_equal(v.frame_slot, [0, 1, 2, 3, 0, 1])
    assert v.slots == tuple(PP_DARK) == sel.frame_pattern()
    assert FrameSelector()(view(nf=3)).slots == ("image",)


def test_max_frames_is_exclusive():
    sel = FrameSelector(pattern=["pumped", "unpumped"], max_frames=3)
    v = sel(view(nf=10))
    np.testing.assert_array_equal(v.frame_slot, [0, 1, 0] + [-1] * 7)
    np.testing.assert_array_equal(v.accepted(), [0, 1, 2])
    assert sel.frame_counts == {"beyond max_frames": 7}
    v = sel(view(nf=2))  # max_frames beyond the frames of the train: nothing rejected
    np.testing.assert_array_equal(v.frame_slot, [0, 1])
    assert sel.frame_counts == {"beyond max_frames": 7}


def test_trains_without_frames_are_rejected():
    sel = FrameSelector()
    assert reason(sel, view(nf=None)) == "empty train"
    assert reason(sel, view(nf=0)) == "empty train"


# -- mask files -------------------------------------------------------------------------------
def test_npz_mask_applies_per_train_and_rejects_missing_trains(tmp_path):
    mask = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    sel = FrameSelector(pattern=["a", "b"], mask=write_npz(tmp_path / "m.npz", [10, 11, 12], mask))
    np.testing.assert_array_equal(sel(view(10, nf=4)).frame_slot, [0, -1, 0, 1])
    # frames beyond the mask's width are masked (missing => False, as dssc_process)
    np.testing.assert_array_equal(sel(view(12, nf=6)).frame_slot, [0, 1, 0, 1, -1, -1])
    assert reason(sel, view(11, nf=4)) == "no accepted frames"
    assert reason(sel, view(13, nf=4)) == "train not in mask"
    assert sel.frame_counts == {"masked": 1 + 2 + 4}


def test_h5_mask_with_integer_values(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["trainId"] = np.array([5, 7], dtype=np.uint64)
        f["mask"] = np.array([[0, 1, 1], [1, 1, 0]], dtype=np.uint8)
    sel = FrameSelector(mask=str(path))
    np.testing.assert_array_equal(sel(view(7, nf=3)).frame_slot, [0, 0, -1])
    np.testing.assert_array_equal(sel(view(5, nf=3)).frame_slot, [-1, 0, 0])


@pytest.mark.parametrize(
    "name, arrays, why",
    [
        ("missing.npz", None, "no such file"),
        ("renamed.npz", "npy", "not an .npz archive"),
        ("garbage.npz", b"not a zip file", "cannot read it"),
        ("garbage.h5", b"not hdf5", "cannot read it"),
        ("nomask.h5", {"trainId": np.arange(3)}, "no array 'mask'"),
        ("only_ids.npz", {"train_ids": np.arange(3)}, "no array 'mask'"),
        ("one_d.npz", {"train_ids": [1, 2], "mask": [True, False]}, "mask must be (trains=2"),
        ("short.npz", {"train_ids": [1, 2, 3], "mask": np.ones((2, 4))}, "mask must be (trains=3"),
        ("float.npz", {"train_ids": [1], "mask": np.ones((1, 4))}, "mask must be bool"),
        ("twos.npz", {"train_ids": [1], "mask": [[0, 2]]}, "only 0 and 1"),
        ("dup.npz", {"train_ids": [4, 5, 4], "mask": np.ones((3, 2), bool)}, "train id 4 appears"),
        ("ids.npz", {"train_ids": [1.0], "mask": np.ones((1, 2), bool)}, "1-D integers"),
        ("mask.txt", b"1 0 1", "unknown file type"),
    ],
)
def test_bad_mask_files_fail_at_construction_naming_the_file(tmp_path, name, arrays, why):
    path = tmp_path / name
    if arrays == "npy":
        np.save(tmp_path / "x.npy", np.ones((2, 3), bool))
        (tmp_path / "x.npy").rename(path)
    elif isinstance(arrays, bytes):
        path.write_bytes(arrays)
    elif isinstance(arrays, dict) and name.endswith(".h5"):
        with h5py.File(path, "w") as f:
            for k, a in arrays.items():
                f[k] = a
    elif isinstance(arrays, dict):
        np.savez(path, **{k: np.asarray(a) for k, a in arrays.items()})
    with pytest.raises(ParamError) as info:
        FrameSelector(mask=str(path))
    assert info.value.key == "mask"
    assert str(path) in str(info.value) and why in str(info.value)


# -- monitor rules ----------------------------------------------------------------------------
def test_monitor_rule_maps_pulses_to_bright_frames():
    rule = {"source": XGM, "key": XGM_KEY, "min": 2.0, "max": 10.0}
    sel = FrameSelector(pattern=PP_DARK, rules=[rule])
    v = sel(view(nf=8, xgm=[1.0, 5.0, 2.0, 10.0]))
    # pulses -> frames [0, 2, 4, 6]; frame 0 (1.0) fails; bounds inclusive; darks kept
    np.testing.assert_array_equal(v.frame_slot, [-1, 1, 2, 3, 0, 1, 2, 3])
    np.testing.assert_array_equal(
        v.products["monitor"], [1.0, np.nan, 5.0, np.nan, 2.0, np.nan, 10.0, np.nan]
    )
    assert sel.frame_counts == {"monitor out of range": 1}


def test_monitor_padding_is_ignored_and_missing_pulses_reject_frames():
    sel = FrameSelector(
        pattern=["pumped", "unpumped"], rules=[{"source": XGM, "key": XGM_KEY, "min": 1}]
    )
    # 3 pulses for 4 bright frames: the last frame has no monitor value
    v = sel(view(nf=4, xgm=[3.0, 0.5, np.nan]))
    np.testing.assert_array_equal(v.frame_slot, [0, -1, -1, -1])
    assert sel.frame_counts == {"monitor out of range": 1, "monitor missing": 2}
    # a padded monitor array (more pulses than frames) is fine
    v = sel(view(nf=2, xgm=[3.0, 4.0] + [0.0] * 100))
    np.testing.assert_array_equal(v.frame_slot, [0, 1])
    assert reason(sel, view(nf=4)) == "monitor missing"
    assert reason(sel, view(nf=2, xgm=[0.0, 0.0])) == "no accepted frames"


def test_two_rules_each_reject_and_are_all_stored():
    rules = [
        {"source": XGM, "key": XGM_KEY, "max": 5},
        {"source": "MON", "key": "v", "min": 0},
    ]
    sel = FrameSelector(rules=rules)
    v = view(nf=3, xgm=[1.0, 6.0, 2.0])
    v.train.data["MON"] = {"v": np.array([1.0, 1.0, -1.0])}
    v = sel(v)
    np.testing.assert_array_equal(v.frame_slot, [0, -1, -1])
    assert set(v.products["monitors"]) == {f"{XGM}/{XGM_KEY}", "MON/v"}
    np.testing.assert_array_equal(v.products["monitors"]["MON/v"], [1.0, 1.0, -1.0])


def test_max_frames_mask_and_rules_combine_counting_each_frame_once(tmp_path):
    path = write_npz(tmp_path / "m.npz", [1], [[1, 0, 1, 1, 1, 1]])
    sel = FrameSelector(max_frames=5, mask=path, rules=[{"source": XGM, "key": XGM_KEY, "min": 1}])
    v = sel(view(1, nf=6, xgm=[1, 0, 0, 1, 1, 0]))
    np.testing.assert_array_equal(v.frame_slot, [0, -1, -1, 0, 0, -1])
    assert sel.frame_counts == {"beyond max_frames": 1, "masked": 1, "monitor out of range": 1}


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"pattern": []}, "pattern"),
        ({"pattern": ["a", "a"]}, "pattern"),
        ({"pattern": "image"}, "pattern"),
        ({"max_frames": 0}, "max_frames"),
        ({"max_frames": 2.5}, "max_frames"),
        ({"mask": 3}, "mask"),
        ({"rules": {"source": XGM}}, "rules"),
        ({"rules": [{"source": XGM, "key": XGM_KEY}]}, "rules[0]"),
        ({"rules": [{"key": XGM_KEY, "min": 1}]}, "rules[0].source"),
        ({"rules": [{"source": XGM, "key": XGM_KEY, "min": 2, "max": 1}]}, "rules[0].max"),
        ({"rules": [{"source": XGM, "key": XGM_KEY, "min": "x"}]}, "rules[0].min"),
        ({"rules": [{"source": XGM, "key": XGM_KEY, "min": 1, "low": 0}]}, "rules[0].low"),
        ({"pattern": ["dark"], "rules": [{"source": XGM, "key": XGM_KEY, "min": 1}]}, "rules"),
    ],
)
def test_parameter_errors(kwargs, key):
    with pytest.raises(ParamError) as info:
        FrameSelector(**kwargs)
    assert info.value.key == key
