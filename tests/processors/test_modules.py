"""`ModuleLayout`: per-module sources as (frame, module, y, x); bad modules left out, counted."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from beamstream.config import parse_config
from beamstream.processors.base import Rejected, TrainView
from beamstream.processors.layout import FrameLayout
from beamstream.processors.modules import ModuleLayout
from beamstream.processors.pipeline import Pipeline
from beamstream.streamer.modules import parse_modules
from beamstream.streamer.train import Train

PATTERN = "SPB_DET_AGIPD1M-1/DET/{module}CH0:xtdf"
NF, NY, NX = 5, 8, 4


def module_data(tid: int, m: int, nf: int = NF, dtype=np.float32) -> dict:
    data = (np.arange(nf * NY * NX).reshape(nf, NY, NX) + 1000 * m + tid).astype(dtype)
    return {
        "image.data": data,
        "image.cellId": np.arange(nf, dtype=np.uint16)[:, None],  # raw files: (N, 1)
        "image.pulseId": np.arange(nf, dtype=np.uint64),
    }


def make_train(tid: int, modules=range(4), **changes) -> Train:
    data = {PATTERN.format(module=m): module_data(tid, m) for m in modules}
    meta = {src: {"timestamp.tid": tid} for src in data}
    train = Train(tid, None, data, meta)
    for m, fn in changes.items():
        fn(train, PATTERN.format(module=int(m[1:])))
    return train


def test_parse_modules() -> None:
    assert parse_modules("0-3") == (0, 1, 2, 3)
    assert parse_modules("0-1,8,10-11") == (0, 1, 8, 10, 11)
    assert parse_modules([3, 1]) == (3, 1)
    for bad in ("3-1", "a", "", [1, 1], [-1], 5):
        with pytest.raises(ValueError, match="source.modules: expected"):
            parse_modules(bad)


def test_assembled_view_and_pool_reuse() -> None:
    layout = ModuleLayout(PATTERN, (0, 1, 2, 3), layout=("frame", "ss", "fs"))
    view = layout(TrainView(make_train(7)))
    assert view.frames.shape == (NF, 4, NY, NX) and view.frames.dtype == np.float32
    for m in range(4):
        np.testing.assert_array_equal(view.frames[:, m], module_data(7, m)["image.data"])
    assert view.products["module_present"].all() and "excluded" not in view.products
    first = view.frames
    ptr = first.__array_interface__["data"][0]
    held = layout(TrainView(make_train(8)))  # `first` is still referenced: a new buffer
    assert held.frames.__array_interface__["data"][0] != ptr
    del view, first, held
    gc.collect()
    again = layout(TrainView(make_train(9)))
    assert again.frames.__array_interface__["data"][0] in {
        b.__array_interface__["data"][0] for b in layout.pool._buffers
    }
    np.testing.assert_array_equal(again.frames[:, 2], module_data(9, 2)["image.data"])


def _wrong_shape(t: Train, src: str) -> None:
    t.data[src]["image.data"] = np.zeros((NF, NY, NX + 1), np.float32)


def _wrong_dtype(t: Train, src: str) -> None:
    t.data[src]["image.data"] = t.data[src]["image.data"].astype(np.float64)


def _other_tid(t: Train, src: str) -> None:
    t.meta[src]["timestamp.tid"] = t.train_id + 1


def _cells(t: Train, src: str) -> None:
    t.data[src]["image.cellId"] = np.arange(NF, dtype=np.uint16)[::-1, None].copy()


def _frames(t: Train, src: str) -> None:
    t.data[src] = module_data(t.train_id, 2, nf=NF + 1)


@pytest.mark.parametrize(
    "change, reason",
    [
        (None, "missing"),
        (_wrong_shape, "wrong shape"),
        (_wrong_dtype, "wrong dtype"),
        (_other_tid, "other train id"),
        (_cells, "cellId differ"),
        (_frames, "frame count differs"),
    ],
)
def test_bad_module_left_out(change, reason, caplog) -> None:
    layout = ModuleLayout(PATTERN, (0, 1, 2, 3))
    layout(TrainView(make_train(1)))  # learns shape and dtype
    train = make_train(2, modules=(0, 1, 3)) if change is None else make_train(2, m2=change)
    view = layout(TrainView(train))
    assert view.products["excluded"] == [f"module 2: {reason}"]
    assert view.products["module_present"].tolist() == [True, True, False, True]
    assert np.isnan(view.frames[:, 2]).all()
    np.testing.assert_array_equal(view.frames[:, 3], module_data(2, 3)["image.data"])
    if change is _wrong_shape:
        assert "found (frame=5, y=8, x=5), expected (frame, y=8, x=4)" in caplog.text


def test_no_usable_module_rejects() -> None:
    layout = ModuleLayout(PATTERN, (0, 1))
    with pytest.raises(Rejected, match="detector data missing"):
        layout(TrainView(Train(1, None, {"OTHER": {"x": 1}})))


def test_gain_axis_selection_raw_agipd() -> None:
    raw = np.zeros((NF, 2, NY, NX), np.uint16)
    raw[:, 0] = 7  # analogue data
    raw[:, 1] = 2  # digital gain
    train = Train(1, None, {PATTERN.format(module=0): {"image.data": raw}})
    for gain, want in ((None, 7), (1, 2)):
        layout = ModuleLayout(PATTERN, (0,), layout=("frame", "gain", "ss", "fs"), gain=gain)
        v = layout(TrainView(train))
        assert v.frames.shape == (NF, 1, NY, NX) and (v.frames == want).all()
    stacked = FrameLayout("S", layout=("frame", "gain", "y", "x"))
    v = stacked(TrainView(Train(1, None, {"S": {"image.data": raw}})))
    assert v.frames.shape == (NF, NY, NX) and (v.frames == 7).all()
    assert np.shares_memory(v.frames, raw)  # a view, no copy


def test_stacked_wrong_shape_names_both_shapes() -> None:
    fl = FrameLayout("S", frame_shape=(16, 512, 128))
    bad = np.zeros((3, 16, 512, 64), np.float32)
    with pytest.raises(Rejected) as e:
        fl(TrainView(Train(1, None, {"S": {"image.data": bad}})))
    assert e.value.reason == "wrong shape"
    assert "found (frame=3, module=16, y=512, x=64)" in str(e.value)
    assert "expected (frame, module=16, y=512, x=128)" in str(e.value)


def test_pipeline_builds_module_layout_and_counts_exclusions() -> None:
    cfg = parse_config(
        f'version = 1\n[source]\ndetector = "{PATTERN}"\nmodules = "0-3"\n'
        '[[processors]]\ntype = "scan_binner"\n'
    )
    pipe = Pipeline(cfg)
    assert isinstance(pipe.transforms[0], ModuleLayout)
    states = pipe.empty_states()
    pipe.process(make_train(1), states)
    view = pipe.process(make_train(2, modules=(0, 1, 2)), states)
    assert view.products["excluded"] == ["module 3: missing"]
    mean = pipe.finalize(states)["scan_binner"]["mean"].data[0, 0]  # (module, y, x)
    want = np.mean([module_data(t, 0)["image.data"] for t in (1, 2)], axis=(0, 1))
    np.testing.assert_allclose(mean[0], want)
    # module 3 is averaged over train 1 only: never counted as zero
    np.testing.assert_allclose(mean[3], module_data(1, 3)["image.data"].mean(axis=0))
