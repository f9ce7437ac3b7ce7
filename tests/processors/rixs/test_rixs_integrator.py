"""EnergyIntegrator: normalization, flux conservation, shifts, dynamic masks, darks, monitors."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.params import ParamError
from beamstream.processors.rixs import EnergyIntegrator
from tests.processors.rixs.synth import pixel_fractions, view

SHAPE = (120, 200)
CURV = [0.03, -4e-5]  # bows the line by about 2 px over 200 columns


def integrate(integ: EnergyIntegrator, frames, **kw):
    state = integ.empty()
    integ.update(state, view(frames, **kw))
    return state, integ.finalize(state)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"bins": 60, "pixel_range": [10.0, 100.0], "margin": 3},  # 1.5 px bins
        {"bins": 200, "pixel_range": [10.0, 100.0], "margin": 5},  # 0.45 px bins
        {"roi": {"y": [20, 110], "x": [15, 180]}, "margin": 4},
    ],
)
def test_constant_image_gives_constant_spectrum(kw):
    integ = EnergyIntegrator(curvature=CURV, frame_shape=list(SHAPE), **kw)
    state, res = integrate(integ, np.full((3, *SHAPE), 7.25))
    spec = res["spectrum"].data
    assert spec.shape == (1, 1, integ.n_kept)
    np.testing.assert_allclose(spec, 7.25, rtol=1e-12, atol=0)
    assert state["frames"][0].tolist() == [3]


def test_flux_is_conserved():
    rng = np.random.default_rng(1)
    img = rng.uniform(0.0, 100.0, SHAPE)
    lo, hi, nb, margin = 5.0, 115.0, 110, 6
    integ = EnergyIntegrator(
        curvature=CURV, frame_shape=list(SHAPE), bins=nb, pixel_range=[lo, hi], margin=margin
    )
    state, res = integrate(integ, img)
    spec = res["spectrum"].data[0, 0]
    weight = res["weight"].data[0, 0]
    # independent expectation: the part of every pixel's corrected interval inside the kept bins
    y = np.arange(SHAPE[0])[:, None]
    x = np.arange(SHAPE[1])[None, :]
    yc = y - (CURV[0] * x + CURV[1] * x * x)
    keep_lo, keep_hi = lo + margin, hi - margin  # 1 px bins
    inside = np.clip(np.minimum(yc + 0.5, keep_hi) - np.maximum(yc - 0.5, keep_lo), 0, 1)
    assert inside.min() == 0 and (inside < 1).any() and (inside == 1).sum() > 1000
    expected = (img * inside).sum()
    assert (spec * weight).sum() == pytest.approx(expected, rel=1e-12)
    assert state["signal"].sum() == pytest.approx(expected, rel=1e-12)
    assert weight.sum() == pytest.approx(inside.sum(), rel=1e-12)


def _line(y0, sigma=1.0):
    rows = np.arange(SHAPE[0])
    cols = np.arange(SHAPE[1])
    centre = y0 + CURV[0] * cols + CURV[1] * cols**2
    return np.stack([100 * pixel_fractions(c, rows, sigma) for c in centre], axis=1)


def test_integer_shift_moves_spectrum_by_one_bin():
    img = _line(40.3)
    shifted = np.roll(img, 1, axis=0)  # the line one pixel further along y
    integ = EnergyIntegrator(curvature=CURV, frame_shape=list(SHAPE))
    s0 = integrate(integ, img)[1]["spectrum"].data[0, 0]
    s1 = integrate(integ, shifted)[1]["spectrum"].data[0, 0]
    np.testing.assert_allclose(s1[1:], s0[:-1], rtol=0, atol=1e-12)
    assert s0.max() > 10 and abs(int(np.argmax(s1)) - int(np.argmax(s0)) - 1) == 0


def test_nan_pixels_are_a_dynamic_mask():
    rng = np.random.default_rng(2)
    frames = np.full((2, *SHAPE), 3.0)
    frames[0][rng.random(SHAPE) < 0.05] = np.nan
    integ = EnergyIntegrator(curvature=CURV, frame_shape=list(SHAPE))
    state, res = integrate(integ, frames)
    np.testing.assert_allclose(res["spectrum"].data, 3.0, rtol=1e-12)
    full = integrate(integ, frames[1:])[0]["weight"][0, 0]
    w = state["weight"][0, 0]
    assert (w < 2 * full).all() and (w > 1.8 * full).all()


def test_dark_slots_are_subtracted_exactly():
    rng = np.random.default_rng(3)
    dark = rng.normal(100.0, 5.0, SHAPE)
    signal = _line(50.7)
    frames = np.stack([dark, dark + signal, dark + 2 * signal, dark])
    slots = ("dark", "image")
    fs = np.array([0, 1, 1, 0])
    integ = EnergyIntegrator(curvature=CURV, frame_shape=list(SHAPE), dark="slots")
    state, res = integrate(integ, frames, slots=slots, frame_slot=fs)
    ref = EnergyIntegrator(curvature=CURV, frame_shape=list(SHAPE), dark=dark)
    _, rres = integrate(ref, np.stack([dark + signal, dark + 2 * signal]))
    plain = EnergyIntegrator(curvature=CURV, frame_shape=list(SHAPE))
    _, pres = integrate(plain, 1.5 * signal)
    s = res["spectrum"]
    assert s.dims == ("scan", "slot", "energy") and s.coords["slot"].tolist() == ["image"]
    np.testing.assert_allclose(s.data, rres["spectrum"].data, rtol=0, atol=1e-9)
    np.testing.assert_allclose(s.data, pres["spectrum"].data, rtol=0, atol=1e-9)
    assert state["dark_frames"].tolist() == [2] and state["frames"][0].tolist() == [2]
    assert s.attrs["dark_subtracted"] is True


def test_monitor_normalization_and_difference():
    frames = np.stack([np.full(SHAPE, 4.0), np.full(SHAPE, 2.0), np.full(SHAPE, 6.0)])
    integ = EnergyIntegrator(
        frame_shape=list(SHAPE), slots=["pumped", "unpumped"], energy_calibration=[500.0, 0.02]
    )
    state = integ.empty()
    v = view(frames, frame_slot=np.array([0, 1, 0]), slots=("pumped", "unpumped"))
    v.products["monitor"] = np.array([2.0, 0.5, 6.0])
    integ.update(state, v)
    res = integ.finalize(state)
    spec = res["spectrum"].data[0]
    np.testing.assert_allclose(spec[0], 5.0, rtol=1e-12)  # (4 + 6) / 2 frames
    np.testing.assert_allclose(spec[1], 2.0, rtol=1e-12)
    per_mon = res["spectrum_per_monitor"].data[0]
    np.testing.assert_allclose(per_mon[0], 10.0 / 8.0, rtol=1e-12)
    np.testing.assert_allclose(per_mon[1], 4.0, rtol=1e-12)
    diff = res["difference"]
    assert diff.dims == ("scan", "pair", "energy") and diff.coords["pair"].tolist() == ["pumped"]
    np.testing.assert_allclose(diff.data, 3.0, rtol=1e-12)
    energy = diff.coords["energy"]
    # bin centres of the kept bins: pixel rows margin .. ny - margin - 1
    np.testing.assert_allclose(energy, 500.0 + 0.02 * np.arange(10, SHAPE[0] - 10), rtol=1e-12)
    assert diff.coord_units == {"energy": "eV"}
    # a train without a monitor makes the per-monitor spectrum undefined, not wrong
    integ.update(state, view(frames[:1], frame_slot=np.array([0]), slots=("pumped", "unpumped")))
    per_mon = integ.finalize(state)["spectrum_per_monitor"].data[0]
    assert np.isnan(per_mon[0]).all() and np.isfinite(per_mon[1]).all()


def test_integrator_merge_laws():
    rng = np.random.default_rng(4)
    integ = EnergyIntegrator(curvature=CURV, frame_shape=list(SHAPE), slots=["a", "b"])
    states = []
    for k in range(3):
        s = integ.empty()
        for t in range(2):
            fr = rng.uniform(0, 50, (2, *SHAPE))
            integ.update(s, view(fr, scan_key=float((k + t) % 2), frame_slot=np.array([0, 1]),
                                 slots=("a", "b")))  # fmt: skip
        states.append(s)
    a, b, c = states
    assert a.merge(b).equals(b.merge(a))  # float addition is commutative: exact
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    for name in left.arrays:
        np.testing.assert_allclose(left[name], right[name], rtol=1e-12)


def test_integrator_params():
    with pytest.raises(ParamError, match="margin"):
        EnergyIntegrator(frame_shape=[20, 20], margin=10)
    with pytest.raises(ParamError, match="roi"):
        EnergyIntegrator(frame_shape=[20, 20], roi={"y": [0, 30]})
    integ = EnergyIntegrator(roi={"y": [0, 50], "x": [0, 300]})
    with pytest.raises(ParamError, match="roi"):
        integ.update(integ.empty(), view(np.zeros((1, *SHAPE))))
    with pytest.raises(ParamError, match="curvature"):
        EnergyIntegrator(frame_shape=[50, 50], curvature=[1.0])
