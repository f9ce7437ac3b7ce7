"""ScanBinner: known answers, merge laws, dssc_process mode, dark subtraction, NaN pixels."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.base import TrainView
from beamstream.processors.binner import FrameMismatch, ScanBinner, dark_slots
from beamstream.processors.params import ParamError
from beamstream.processors.selector import FrameSelector
from beamstream.processors.state import BinnedState
from beamstream.streamer.train import Train

PP = ("pumped", "unpumped")
PP_DARK = ("pumped", "pumped_dark", "unpumped", "unpumped_dark")
SENTINEL = 10**9
PIX = (3, 4)


def synthetic(
    n_trains: int,
    slots=PP,
    n_bins: int = 3,
    dtype=np.int32,
    pix=PIX,
    seed: int = 0,
    mask_fraction: float = 0.0,
    const=None,
) -> list[TrainView]:
    """Trains whose accepted frames hold ``1000*bin + const[slot]`` and masked frames a sentinel.

    Frames per train vary (incomplete last pattern repeat included); ``frame_slot`` is set as the
    FrameSelector would, with a random (ragged) mask when ``mask_fraction`` > 0.
    """
    rng = np.random.default_rng(seed)
    const = np.arange(len(slots)) * 10 + 3 if const is None else np.asarray(const)
    views = []
    for t in range(n_trains):
        nf = int(rng.integers(len(slots), 4 * len(slots) + 2))
        b = int(rng.integers(n_bins))
        slot = np.arange(nf) % len(slots)
        ok = rng.random(nf) >= mask_fraction
        values = np.where(ok, 1000 * b + const[slot], SENTINEL)
        frames = ro(np.broadcast_to(values.reshape(-1, *(1,) * len(pix)), (nf, *pix)).astype(dtype))
        v = TrainView(Train(t), frames=frames, slots=tuple(slots))
        v.frame_slot = np.where(ok, slot, -1)
        v.scan_key = float(b) * 0.5
        views.append(v)
    return views


def ro(a: np.ndarray) -> np.ndarray:
    """Read-only, as the pipeline hands frames over (also keeps numba specialisations few)."""
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def run(binner: ScanBinner, views, state=None) -> BinnedState:
    state = binner.empty() if state is None else state
    for v in views:
        binner.update(state, v)
    return state


def expected_counts(views, nslot):
    out: dict[float, np.ndarray] = {}
    for v in views:
        c = out.setdefault(v.scan_key, np.zeros(nslot, np.int64))
        c += np.bincount(v.frame_slot[v.frame_slot >= 0], minlength=nslot)
    return out


# -- known answers ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int32, np.float64])
def test_bin_means_equal_their_constant_and_sentinels_never_leak(dtype):
    views = synthetic(40, n_bins=4, dtype=dtype, mask_fraction=0.3)
    binner = ScanBinner(slots=PP)
    res = binner.finalize(run(binner, views))
    keys = np.array(sorted({v.scan_key for v in views}))
    np.testing.assert_array_equal(res["mean"].coords["scan"], keys)
    assert res["mean"].dims == ("scan", "slot", "y", "x")
    assert list(res["mean"].coords["slot"]) == list(PP)
    for i, key in enumerate(keys):
        for s in range(2):
            assert np.all(res["mean"].data[i, s] == 1000 * (2 * key) + 10 * s + 3)
    counts = expected_counts(views, 2)
    np.testing.assert_array_equal(res["counts"].data, [counts[k] for k in keys])
    np.testing.assert_array_equal(
        res["trains"].data, [sum(v.scan_key == k for v in views) for k in keys]
    )
    np.testing.assert_array_equal(res["pump_probe"].data, -10.0)


def test_four_d_frames_and_no_pattern():
    views = synthetic(6, slots=("image",), n_bins=2, dtype=np.uint16, pix=(2, 3, 4))
    binner = ScanBinner()
    res = binner.finalize(run(binner, views))
    assert res["mean"].dims == ("scan", "slot", "module", "y", "x")
    assert res["mean"].data.shape == (len(res["trains"].data), 1, 2, 3, 4)
    assert set(np.unique(res["mean"].data)) <= {3.0, 1003.0}
    assert "pump_probe" not in res


def test_frame_slot_none_means_every_frame_in_pattern_order():
    frames = ro(np.arange(5, dtype=np.int32).reshape(5, 1, 1) * np.ones((1, 2, 2), np.int32))
    binner = ScanBinner(slots=PP)
    state = binner.empty()
    binner.update(state, TrainView(Train(1), frames=frames, slots=PP))
    res = binner.finalize(state)
    np.testing.assert_array_equal(res["mean"].data[0, :, 0, 0], [2.0, 2.0])  # (0+2+4)/3, (1+3)/2
    np.testing.assert_array_equal(res["counts"].data, [[3, 2]])


def test_slot_without_frames_gives_nan_and_zero_count():
    views = synthetic(5, n_bins=1)
    for v in views:
        v.frame_slot = np.where(v.frame_slot == 1, -1, v.frame_slot)
    binner = ScanBinner(slots=PP)
    res = binner.finalize(run(binner, views))
    assert np.all(np.isnan(res["mean"].data[0, 1])) and np.all(res["mean"].data[0, 0] == 3)
    assert res["counts"].data[0, 1] == 0
    assert np.all(np.isnan(res["pump_probe"].data))


def test_nan_pixels_are_neither_summed_nor_counted():
    frames = np.ones((4, 2, 2)) * np.array([1.0, 2, 3, 4])[:, None, None]
    frames[1, 0, 0] = np.nan
    frames[:, 1, 1] = np.nan
    binner = ScanBinner()
    state = binner.empty()
    binner.update(state, TrainView(Train(1), frames=ro(frames)))
    res = binner.finalize(state)
    mean = res["mean"].data[0, 0]
    assert mean[0, 0] == pytest.approx((1 + 3 + 4) / 3, rel=1e-15)
    assert mean[0, 1] == 2.5 and np.isnan(mean[1, 1])
    np.testing.assert_array_equal(state["pixel_count"][0, 0], [[3, 4], [4, 0]])
    assert res["counts"].data[0, 0] == 4


def test_empty_trains_and_all_rejected_leave_the_state_untouched():
    binner = ScanBinner(slots=PP)
    state = binner.empty()
    binner.update(state, TrainView(Train(1), frames=None))
    binner.update(state, TrainView(Train(2), frames=np.zeros((0, 2, 2), np.uint16)))
    v = TrainView(Train(3), frames=np.zeros((2, 2, 2), np.uint16), slots=PP)
    v.frame_slot = np.array([-1, -1])
    binner.update(state, v)
    assert state == binner.empty()
    res = binner.finalize(state)
    assert set(res) == {"trains"} and res["trains"].data.shape == (0,)


def test_duplicate_trains_are_simply_added_twice():
    (v,) = synthetic(1, n_bins=1)
    binner = ScanBinner(slots=PP)
    state = run(binner, [v, v])
    np.testing.assert_array_equal(state["trains"], [2])
    np.testing.assert_array_equal(state["count"], 2 * expected_counts([v], 2)[v.scan_key][None])


def test_change_of_shape_or_kind_raises_without_touching_the_state():
    binner = ScanBinner()
    state = run(binner, synthetic(2, slots=("image",), n_bins=1, dtype=np.uint16))
    before = state.copy()
    for frames in (np.zeros((2, 3, 5), np.uint16), np.zeros((2, *PIX), np.float32)):
        v = TrainView(Train(9), frames=frames)
        v.scan_key = 7.0  # a new bin must not be added either
        with pytest.raises(FrameMismatch, match="pixel shape"):
            binner.update(state, v)
    with pytest.raises(FrameMismatch, match="cannot be binned"):
        binner.update(state, TrainView(Train(9), frames=np.zeros((2, *PIX), complex)))
    with pytest.raises(FrameMismatch, match=r"\(frame, \[module,\] y, x\)"):
        binner.update(state, TrainView(Train(9), frames=np.zeros((2, 4), np.uint16)))
    assert state == before


def test_view_slots_must_match_the_binner():
    binner = ScanBinner(slots=PP)
    v = synthetic(1, slots=PP_DARK)[0]
    with pytest.raises(FrameMismatch, match="slots"):
        binner.update(binner.empty(), v)


# -- merge laws -------------------------------------------------------------------------------
def split_merge(binner, views, k, seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(views))
    cuts = np.sort(rng.choice(np.arange(1, len(views)), k - 1, replace=False))
    parts = [run(binner, [views[i] for i in chunk]) for chunk in np.split(order, cuts)]
    rng.shuffle(parts)
    merged = parts[0]
    for p in parts[1:]:
        merged = binner.merge(merged, p) if rng.random() < 0.5 else binner.merge(p, merged)
    return merged


@pytest.mark.parametrize("mode", ["exact", "dssc_process"])
def test_merge_is_commutative_associative_and_equals_one_piece(mode):
    views = synthetic(60, n_bins=5, seed=1, mask_fraction=0.2)
    binner = ScanBinner(slots=PP, mode=mode)
    a, b, c = (run(binner, views[i::3]) for i in range(3))
    assert a.merge(b) == b.merge(a)
    ab_c, a_bc = a.merge(b).merge(c), a.merge(b.merge(c))
    whole = run(binner, views)
    for k, seed in [(2, 0), (4, 1), (7, 2)]:
        merged = split_merge(binner, views, k, seed)
        np.testing.assert_array_equal(merged.keys, whole.keys)
        if mode == "exact":  # integer sums: bit-exact
            assert merged == whole and ab_c == whole and a_bc == whole
        else:
            np.testing.assert_allclose(merged["sum"], whole["sum"], rtol=1e-12)
            np.testing.assert_array_equal(merged["count"], whole["count"])
            np.testing.assert_allclose(ab_c["sum"], a_bc["sum"], rtol=1e-12)


def test_float_merge_matches_one_piece_to_1e_12():
    rng = np.random.default_rng(5)
    views = synthetic(50, n_bins=4, dtype=np.float64, seed=3)
    for v in views:  # non-trivial values and a dynamic NaN mask
        f = v.frames + rng.normal(0, 1, v.frames.shape)
        f[rng.random(f.shape) < 0.05] = np.nan
        v.frames = ro(f)
    binner = ScanBinner(slots=PP)
    whole = run(binner, views)
    merged = split_merge(binner, views, 5, 9)
    np.testing.assert_array_equal(merged["pixel_count"], whole["pixel_count"])
    np.testing.assert_array_equal(merged["count"], whole["count"])
    np.testing.assert_allclose(merged["sum"], whole["sum"], rtol=1e-12)
    m1, m2 = binner.finalize(whole)["mean"].data, binner.finalize(merged)["mean"].data
    np.testing.assert_allclose(m1, m2, rtol=1e-12)


def test_states_with_different_bins_merge_on_the_union():
    views = synthetic(30, n_bins=6, seed=4)
    binner = ScanBinner(slots=PP)
    low = run(binner, [v for v in views if v.scan_key < 1.5])
    high = run(binner, [v for v in views if v.scan_key >= 1.0])
    assert not np.array_equal(low.keys, high.keys)
    both = low.merge(high)
    np.testing.assert_array_equal(both.keys, np.union1d(low.keys, high.keys))
    overlap = [v for v in views if v.scan_key < 1.5] + [v for v in views if v.scan_key >= 1.0]
    assert both == run(binner, overlap)
    empty = binner.empty()
    assert empty.merge(low) == low and low.merge(empty) == low
    assert BinnedState.from_dict(both.to_dict()) == both


def test_states_of_other_modes_or_patterns_do_not_merge():
    views = synthetic(4, n_bins=1)
    exact = run(ScanBinner(slots=PP), views)
    with pytest.raises(ValueError):
        exact.merge(run(ScanBinner(slots=PP, mode="dssc_process"), views))
    with pytest.raises(ValueError):
        exact.merge(ScanBinner(slots=("a", "b")).empty())


# -- dssc_process mode ------------------------------------------------------------------------
def dssc_reference(views, nslot):
    """dssc_process: per-train NaN-skipping slot means, summed over trains, / trains with data."""
    sums, counts = {}, {}
    for v in views:
        data = np.where((v.frame_slot >= 0)[:, None, None], v.frames, np.nan).astype(float)
        s = sums.setdefault(v.scan_key, np.zeros((nslot, *v.frames.shape[1:])))
        c = counts.setdefault(v.scan_key, np.zeros(nslot))
        for j in range(nslot):
            sel = data[j::nslot]
            if np.isfinite(sel).any():
                s[j] += np.nanmean(sel, axis=0)
                c[j] += 1
    keys = sorted(sums)
    return np.array([sums[k] / counts[k].reshape(-1, 1, 1) for k in keys])


def ragged_values(views, seed=0):
    rng = np.random.default_rng(seed)
    for v in views:  # frame values that differ within a train, so the two means differ
        v.frames = ro(v.frames + rng.integers(0, 50, (v.frames.shape[0], 1, 1), dtype=np.int32))
    return views


def test_dssc_process_mode_matches_reference_and_exact_mode_without_mask():
    views = ragged_values(synthetic(40, n_bins=3, seed=6))
    ref = dssc_reference(views, 2)
    dssc = ScanBinner(slots=PP, mode="dssc_process")
    exact = ScanBinner(slots=PP)
    got = dssc.finalize(run(dssc, views))
    np.testing.assert_allclose(got["mean"].data, ref, rtol=1e-12)
    # every train has frames of both slots: counts are trains per slot
    np.testing.assert_array_equal(got["counts"].data, got["trains"].data[:, None] * [1, 1])
    # no mask but ragged frame numbers per train: mean of train means != frame mean
    assert not np.allclose(exact.finalize(run(exact, views))["mean"].data, ref, rtol=1e-6)


def test_dssc_process_mode_with_ragged_mask_differs_from_exact():
    views = ragged_values(synthetic(40, n_bins=3, seed=7, mask_fraction=0.4), seed=1)
    for v in views:  # the same number of frames in every train: only the mask is ragged
        v.frames = ro(v.frames[:8])
        v.frame_slot = v.frame_slot[:8]
    views = [v for v in views if v.frames.shape[0] == 8]
    ref = dssc_reference(views, 2)
    dssc, exact = ScanBinner(slots=PP, mode="dssc_process"), ScanBinner(slots=PP)
    got = dssc.finalize(run(dssc, views))["mean"].data
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    exact_mean = exact.finalize(run(exact, views))["mean"].data
    assert np.abs(exact_mean - ref).max() > 0.1
    for v in views:  # all-True mask: both definitions agree
        v.frame_slot = np.arange(8) % 2
    np.testing.assert_allclose(
        exact.finalize(run(exact, views))["mean"].data,
        dssc.finalize(run(dssc, views))["mean"].data,
        rtol=1e-12,
    )


def test_dssc_process_mode_float_nan_pixels():
    frames = np.array([1.0, np.nan, 3.0, 5.0]).reshape(4, 1, 1) * np.ones((1, 1, 2))
    frames[:, 0, 1] = np.nan
    binner = ScanBinner(mode="dssc_process")
    views = [TrainView(Train(1), frames=ro(frames)), TrainView(Train(2), frames=ro(frames * 0 + 2))]
    state = run(binner, views)
    mean = binner.finalize(state)["mean"].data[0, 0, 0]
    assert mean[0] == pytest.approx((3.0 + 2.0) / 2, rel=1e-15) and np.isnan(mean[1])
    np.testing.assert_array_equal(state["pixel_count"][0, 0, 0], [2, 0])


# -- dark subtraction -------------------------------------------------------------------------
def test_dark_slots_by_name():
    assert dark_slots(PP_DARK) == {0: 1, 2: 3}
    assert dark_slots(("pumped", "unpumped", "dark")) == {0: 2, 1: 2}
    assert dark_slots(("image",)) == {}
    assert dark_slots(("a", "b_dark", "c_dark")) == {}


@pytest.mark.parametrize("mode", ["exact", "dssc_process"])
def test_dark_subtraction_and_pump_probe(mode):
    views = synthetic(30, slots=PP_DARK, n_bins=2, mask_fraction=0.2, const=[50, 7, 20, 3])
    binner = ScanBinner(slots=PP_DARK, dark_subtract=True, mode=mode)
    res = binner.finalize(run(binner, views))
    sub = res["mean_dark_subtracted"]
    assert list(sub.coords["slot"]) == ["pumped", "unpumped"]
    assert sub.attrs["dark_slot"] == ["pumped_dark", "unpumped_dark"]
    np.testing.assert_allclose(sub.data[:, 0], 43.0, rtol=1e-12)
    np.testing.assert_allclose(sub.data[:, 1], 17.0, rtol=1e-12)
    np.testing.assert_allclose(res["pump_probe"].data, 26.0, rtol=1e-12)
    plain = ScanBinner(slots=PP_DARK, mode=mode)
    np.testing.assert_allclose(plain.finalize(run(plain, views))["pump_probe"].data, 30.0)


def test_single_dark_slot_is_shared():
    views = synthetic(10, slots=("pumped", "unpumped", "dark"), n_bins=1, const=[9, 5, 1])
    binner = ScanBinner(slots=("pumped", "unpumped", "dark"), dark_subtract=True)
    res = binner.finalize(run(binner, views))
    np.testing.assert_array_equal(res["mean_dark_subtracted"].data[0, :, 0, 0], [8.0, 4.0])
    np.testing.assert_array_equal(res["pump_probe"].data, 4.0)


# -- with the selector ------------------------------------------------------------------------
def test_selector_mask_feeds_binner(tmp_path):
    mask = np.array([[1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 1, 0]], bool)
    np.savez(tmp_path / "m.npz", train_ids=[1, 2], mask=mask)
    sel = FrameSelector(pattern=list(PP), max_frames=5, mask=str(tmp_path / "m.npz"))
    binner = ScanBinner(slots=sel.frame_pattern())
    state = binner.empty()
    for tid in (1, 2):
        frames = np.where(mask[tid - 1], np.arange(6) % 2 * 10 + 3, SENTINEL).astype(np.int32)
        binner.update(state, sel(TrainView(Train(tid), frames=ro(frames.reshape(6, 1, 1)))))
    res = binner.finalize(state)
    np.testing.assert_array_equal(res["counts"].data, [[4, 4]])
    np.testing.assert_array_equal(res["mean"].data[0, :, 0, 0], [3.0, 13.0])


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"slots": []}, "slots"),
        ({"slots": ["a", "a"]}, "slots"),
        ({"mode": "fast"}, "mode"),
        ({"dark_subtract": "yes"}, "dark_subtract"),
        ({"slots": ["image"], "dark_subtract": True}, "dark_subtract"),
        ({"threads": 0}, "threads"),
    ],
)
def test_parameter_errors(kwargs, key):
    with pytest.raises(ParamError) as info:
        ScanBinner(**kwargs)
    assert info.value.key == key


@pytest.mark.parametrize("dtype", [np.int32, np.float64])
def test_parallel_and_serial_kernels_give_identical_sums(dtype):
    views = synthetic(8, n_bins=2, dtype=dtype, pix=(64, 130), mask_fraction=0.3)  # 2 blocks
    serial, parallel = ScanBinner(slots=PP, threads=1), ScanBinner(slots=PP, threads=2)
    parallel.parallel_min_bytes = 0  # these trains are small: force the threaded kernel
    assert parallel._parallel(views[0].frames.reshape(len(views[0].frames), -1))
    assert not serial._parallel(views[0].frames.reshape(len(views[0].frames), -1))
    a, b = run(serial, views), run(parallel, views)
    assert a == b
    assert np.all(serial.finalize(a)["mean"].data[:, 1] % 1000 == 13)
