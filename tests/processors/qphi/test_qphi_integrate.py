"""Integration against pyFAI (the oracle): per-bin sums, intensities, streaming, bbox, masks.

Two pyFAI behaviours shape the comparisons (reference/algorithms.md 2.4):

* **bin 0 over-fill**: with an explicit radial range, pyFAI's no-split engines truncate the
  (negative) bin number of pixels in ``(lo - width, lo)`` toward zero, so they land in bin 0. We
  floor, so those pixels are outside. The tests check that bin 0 differs by exactly those pixels
  and compare the other bins.
* **edge rounding**: a pixel centre within float rounding of a bin edge may land in the
  neighbouring bin. We compute positions in float64 with pyFAI's formulas and bin with pyFAI's
  ``(x - lo) / width`` on ``hi * (1 + eps32)``, so on these detectors the counts agree exactly; the
  tests allow ``|dC| <= 2 + 1e-3 C`` (the documented tolerance) and compare sums where counts agree.
"""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.qphi.integrator import QPhiIntegrator

from .conftest import SHAPE, geometry_table, poisson_frames, pyfai_ai, static_mask, view_of

NO_HIST = ("no", "histogram", "cython")
Q_RANGE = (1.0, 11.0)


def _integrate(qi: QPhiIntegrator, frames: np.ndarray, **view_kw):
    st = qi.empty()
    qi.update(st, view_of(frames, **view_kw))
    return st, qi.finalize(st)


def _check_counts(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Documented count tolerance; returns the bins whose counts agree exactly."""
    assert np.all(np.abs(ours - ref) <= 2 + 1e-3 * ref)
    assert float(ours.sum()) == pytest.approx(float(ref.sum()), abs=2 + 1e-4 * float(ref.sum()))
    return ours == ref


def _below_lo(ai, mask, lo, width) -> int:
    q = ai.center_array(SHAPE, unit="q_nm^-1")
    return int(np.count_nonzero((mask == 0) & (q > lo - width) & (q < lo)))


def test_1d_sums_equal_pyfai_no_split():
    frames = poisson_frames(1)
    mask = static_mask()
    qi = QPhiIntegrator(
        geometry=geometry_table(),
        mask=mask,
        npt_q=200,
        q_range=Q_RANGE,
        polarization_factor=0.95,
        outputs=["iq"],
    )
    st, res = _integrate(qi, frames)
    ai = pyfai_ai()
    ref = ai.integrate1d(
        frames[0],
        200,
        unit="q_nm^-1",
        method=NO_HIST,
        mask=mask,
        radial_range=Q_RANGE,
        polarization_factor=0.95,
        correctSolidAngle=True,
    )
    np.testing.assert_allclose(res["I_q"].coords["q"], ref.radial, rtol=1e-12)
    count = st["count_1d"][0, 0]
    # bin 0: pyFAI also holds the pixels just below lo (truncation toward zero)
    extra = _below_lo(ai, mask, Q_RANGE[0], (Q_RANGE[1] * (1 + 2**-23) - Q_RANGE[0]) / 200)
    assert extra > 0
    assert ref.count[0] - count[0] == extra
    same = _check_counts(count[1:], ref.count[1:])
    assert same.mean() > 0.99
    s, w = st["sum_signal_1d"][0, 0][1:], st["sum_norm_1d"][0, 0][1:]
    np.testing.assert_allclose(s[same], ref.sum_signal[1:][same], rtol=1e-6)
    np.testing.assert_allclose(w[same], ref.sum_normalization[1:][same], rtol=1e-6)
    np.testing.assert_allclose(res["I_q"].data[0, 0, 1:], ref.intensity[1:], rtol=1e-5)


def test_2d_sums_equal_pyfai_no_split():
    frames = poisson_frames(1, seed=3)
    mask = static_mask()
    qi = QPhiIntegrator(
        geometry=geometry_table(),
        mask=mask,
        npt_q=120,
        npt_phi=72,
        q_range=Q_RANGE,
        phi_range=(-180, 180),
        polarization_factor=0.9,
        outputs=["iqphi"],
    )
    st, res = _integrate(qi, frames)
    ai = pyfai_ai()
    ref = ai.integrate2d(
        frames[0],
        120,
        72,
        unit="q_nm^-1",
        method=NO_HIST,
        mask=mask,
        radial_range=Q_RANGE,
        azimuth_range=(-180, 180),
        polarization_factor=0.9,
        correctSolidAngle=True,
    )
    assert res["I_qphi"].data.shape == (1, 1, 72, 120)
    np.testing.assert_allclose(res["I_qphi"].coords["q"], ref.radial, rtol=1e-12)
    np.testing.assert_allclose(res["I_qphi"].coords["phi"], ref.azimuthal, rtol=0, atol=1e-4)
    count = st["count"][0, 0]
    same = _check_counts(count[:, 1:], ref.count[:, 1:])
    assert same.mean() > 0.99
    np.testing.assert_allclose(
        st["sum_signal"][0, 0][:, 1:][same], ref.sum_signal[:, 1:][same], rtol=1e-6
    )
    np.testing.assert_allclose(
        st["sum_norm"][0, 0][:, 1:][same], ref.sum_normalization[:, 1:][same], rtol=1e-6
    )
    filled = (ref.count[:, 1:] > 0) & same
    np.testing.assert_allclose(
        res["I_qphi"].data[0, 0][:, 1:][filled], ref.intensity[:, 1:][filled], rtol=1e-5
    )
    # empty bins are NaN (pyFAI writes 0)
    empty = count == 0
    assert empty.any() and np.all(np.isnan(res["I_qphi"].data[0, 0][empty]))


def test_streamed_frames_equal_pyfai_on_the_mean_image():
    frames = poisson_frames(9, seed=5)
    mask = static_mask()
    qi = QPhiIntegrator(
        geometry=geometry_table(),
        mask=mask,
        npt_q=150,
        npt_phi=36,
        q_range=(0.0, 11.0),
        polarization_factor=0.99,
    )
    st = qi.empty()
    for i in range(3):  # three trains of three frames
        qi.update(st, view_of(frames[3 * i : 3 * i + 3], train_id=i))
    res = qi.finalize(st)
    assert st["n_frames"][0, 0] == 9
    ai = pyfai_ai()
    kw = dict(
        unit="q_nm^-1",
        method=NO_HIST,
        mask=mask,
        radial_range=(0.0, 11.0),
        polarization_factor=0.99,
    )
    mean = frames.mean(axis=0)
    r1 = ai.integrate1d(mean, 150, **kw)
    r2 = ai.integrate2d(mean, 150, 36, azimuth_range=(-180, 180), **kw)
    # lo below every pixel: no bin-0 over-fill, all bins comparable
    np.testing.assert_array_equal(st["count_1d"][0, 0], 9 * r1.count)
    np.testing.assert_allclose(st["sum_norm_1d"][0, 0], 9 * r1.sum_normalization, rtol=1e-6)
    np.testing.assert_allclose(res["I_q"].data[0, 0], r1.intensity, rtol=1e-5)
    filled = r2.count > 0
    np.testing.assert_allclose(res["I_qphi"].data[0, 0][filled], r2.intensity[filled], rtol=1e-5)
    # Poisson errors: sem = sqrt(sum var) / sum norm, var = max(1, raw)
    assert np.all(res["sigma_q"].data[0, 0] > 0)
    ref_sem = np.sqrt(np.maximum(frames, 1).sum(0))
    r_sem = ai.integrate1d(ref_sem**2, 150, **kw)  # sum of variances per bin
    np.testing.assert_allclose(st["sum_var_1d"][0, 0], r_sem.sum_signal, rtol=1e-6)


def test_bbox_split_equals_pyfai_on_a_smooth_image():
    ai = pyfai_ai()
    q = ai.center_array(SHAPE, unit="q_nm^-1")
    chi = ai.center_array(SHAPE, unit="chi_rad")
    img = (1000 * np.exp(-q / 8) * (1 + 0.2 * np.cos(chi))).astype(np.float32)
    qi = QPhiIntegrator(
        geometry=geometry_table(),
        npt_q=100,
        npt_phi=36,
        q_range=Q_RANGE,
        split="bbox",
        error_model="none",
    )
    st, res = _integrate(qi, img[None])
    kw = dict(unit="q_nm^-1", method=("bbox", "csr", "cython"), radial_range=Q_RANGE)
    r1 = ai.integrate1d(img, 100, **kw)
    r2 = ai.integrate2d(img, 100, 36, azimuth_range=(-180, 180), **kw)
    inner = slice(2, -2)  # away from the radial range edges
    np.testing.assert_allclose(res["I_q"].data[0, 0, inner], r1.intensity[inner], rtol=1e-5)
    np.testing.assert_allclose(st["count_1d"][0, 0, inner], r1.count[inner], rtol=1e-4)
    i2 = res["I_qphi"].data[0, 0][1:-1, inner]
    ok = r2.count[1:-1, inner] > 0.5
    assert ok.mean() > 0.5
    np.testing.assert_allclose(i2[ok], r2.intensity[1:-1, inner][ok], rtol=1e-5)
    # splitting differs from no-split: the test is not vacuous
    no = QPhiIntegrator(
        geometry=geometry_table(), npt_q=100, npt_phi=36, q_range=Q_RANGE, outputs=["iq"]
    )
    _, rno = _integrate(no, img[None])
    assert not np.allclose(rno["I_q"].data[0, 0, inner], res["I_q"].data[0, 0, inner], rtol=1e-6)


def test_nan_pixels_are_masked_for_that_frame_only():
    frames = poisson_frames(2, seed=7)
    bad = np.zeros(SHAPE, bool)
    bad[30:60, 100:140] = True
    frames[0][bad] = np.nan
    frames[1][0, 0] = np.inf
    mask = static_mask()
    qi = QPhiIntegrator(
        geometry=geometry_table(), mask=mask, npt_q=100, npt_phi=18, q_range=(0.0, 11.0)
    )
    st, res = _integrate(qi, frames)
    ai = pyfai_ai()
    kw = dict(unit="q_nm^-1", method=NO_HIST, radial_range=(0.0, 11.0))
    refs = [
        ai.integrate1d(np.nan_to_num(frames[0], nan=0.0), 100, mask=mask | bad, **kw),
        ai.integrate1d(
            np.nan_to_num(frames[1], posinf=0.0),
            100,
            mask=mask | (np.arange(frames[1].size).reshape(SHAPE) == 0),
            **kw,
        ),
    ]
    for name, attr in (
        ("sum_signal_1d", "sum_signal"),
        ("sum_norm_1d", "sum_normalization"),
        ("count_1d", "count"),
    ):
        np.testing.assert_allclose(st[name][0, 0], sum(getattr(r, attr) for r in refs), rtol=1e-6)
    # the frame-1 pixels under the frame-0 NaN patch still count once
    static = qi.table(0, 1).count
    lost = static * 2 - st["count_1d"][0, 0]
    assert lost.sum() == bad[mask == 0].sum() + 1
    assert np.all(np.isfinite(res["I_q"].data[0, 0][static > 0]))


def test_dark_flat_dummy_equal_pyfai():
    rng = np.random.default_rng(11)
    raw = poisson_frames(1, seed=11)[0] + 100
    dark = rng.normal(100, 2, SHAPE).astype(np.float32)
    flat = rng.uniform(0.8, 1.2, SHAPE).astype(np.float32)
    raw[10:12, 10:200] = -1.0  # dummy pixels
    qi = QPhiIntegrator(
        geometry=geometry_table(),
        dark=dark,
        flat=flat,
        dummy=-1.0,
        npt_q=100,
        q_range=(0.0, 11.0),
        outputs=["iq"],
        polarization_factor=0.5,
    )
    st, res = _integrate(qi, raw[None])
    ai = pyfai_ai()
    ref = ai.integrate1d(
        raw,
        100,
        unit="q_nm^-1",
        method=NO_HIST,
        radial_range=(0.0, 11.0),
        dark=dark,
        flat=flat,
        dummy=-1.0,
        delta_dummy=0.0,
        polarization_factor=0.5,
        error_model="poisson",
    )
    np.testing.assert_array_equal(st["count_1d"][0, 0], ref.count)
    np.testing.assert_allclose(res["I_q"].data[0, 0], ref.intensity, rtol=1e-5)
    np.testing.assert_allclose(st["sum_var_1d"][0, 0], ref.sum_variance, rtol=1e-5)
    np.testing.assert_allclose(res["sigma_q"].data[0, 0], ref.sem, rtol=1e-5)


def test_unit_a_and_py4xs_phi_convention():
    frames = poisson_frames(1, seed=2)
    ai = pyfai_ai()
    qa = QPhiIntegrator(
        geometry=geometry_table(), npt_q=80, q_range=(0.0, 1.1), unit="q_A^-1", outputs=["iq"]
    )
    st, res = _integrate(qa, frames)
    ref = ai.integrate1d(frames[0], 80, unit="q_A^-1", method=NO_HIST, radial_range=(0.0, 1.1))
    assert res["I_q"].coord_units["q"] == "1/A"
    np.testing.assert_allclose(res["I_q"].coords["q"], ref.radial, rtol=1e-12)
    np.testing.assert_allclose(res["I_q"].data[0, 0], ref.intensity, rtol=1e-5)
    # phi = -chi: the phi map is the chi map flipped along the azimuth axis
    kw = dict(geometry=geometry_table(), npt_q=50, npt_phi=36, q_range=Q_RANGE, outputs=["iqphi"])
    _, rc = _integrate(QPhiIntegrator(azimuth="chi", **kw), frames)
    _, rp = _integrate(QPhiIntegrator(azimuth="phi", **kw), frames)
    a, b = rp["I_qphi"].data[0, 0], rc["I_qphi"].data[0, 0][::-1]
    ok = np.isfinite(a) & np.isfinite(b)
    assert ok.mean() > 0.5
    np.testing.assert_allclose(a[ok], b[ok], rtol=2e-3)
    np.testing.assert_allclose(rp["count_qphi"].data.sum(), rc["count_qphi"].data.sum())


def test_uint16_frames_and_integer_results():
    frames = poisson_frames(2, seed=4).astype(np.uint16)
    qi = QPhiIntegrator(geometry=geometry_table(), npt_q=64, q_range=Q_RANGE, outputs=["iq"])
    st, _ = _integrate(qi, frames)
    st32, _ = _integrate(qi, frames.astype(np.float32))
    assert st.equals(st32)


def test_multi_detector_sums_onto_one_grid():
    frames_a = poisson_frames(3, seed=1)
    frames_b = poisson_frames(3, seed=2)[:, :200, :180].copy()
    mask_a = static_mask()
    geom_b = {
        **geometry_table(),
        "shape": [200, 180],
        "dist": 0.06,
        "poni1": -0.004,
        "poni2": 0.021,
        "rot1": 0.4,
        "rot2": 0.0,
        "rot3": 0.0,
    }
    mask_b = np.zeros((200, 180), np.int8)
    mask_b[:, :5] = 1
    common = dict(npt_q=90, npt_phi=24, q_range=(0.05, 25.0), polarization_factor=0.9)
    both = QPhiIntegrator(
        geometry=geometry_table(),
        mask=mask_a,
        detectors=[{"geometry": geom_b, "mask": mask_b, "source": "WAXS", "key": "data.image"}],
        **common,
    )
    only_a = QPhiIntegrator(geometry=geometry_table(), mask=mask_a, **common)
    only_b = QPhiIntegrator(geometry=geom_b, mask=mask_b, **common)
    data = {"WAXS": {"data.image": frames_b}}
    st = both.empty()
    both.update(st, view_of(frames_a, data=data))
    sa, sb = only_a.empty(), only_b.empty()
    only_a.update(sa, view_of(frames_a))
    only_b.update(sb, view_of(frames_b))
    for name in ("sum_signal", "sum_norm", "count", "sum_var", "sum_signal_1d", "count_1d"):
        np.testing.assert_allclose(st[name], sa[name] + sb[name], rtol=1e-12)
    # both detectors contribute
    assert sa["count_1d"].sum() > 0 and sb["count_1d"].sum() > 0
    # a missing secondary source is an error naming it
    with pytest.raises(KeyError, match="WAXS"):
        both.update(st, view_of(frames_a))


def test_per_frame_products_slots_and_difference():
    frames = poisson_frames(6, seed=8)
    frames[1::2] *= 2  # "pumped" frames twice as bright
    slot = np.array([0, 1, 0, 1, -1, 1])  # frame 4 rejected
    qi = QPhiIntegrator(
        geometry=geometry_table(),
        npt_q=60,
        npt_phi=12,
        q_range=Q_RANGE,
        per_frame="iqphi",
        slots=("unpumped", "pumped"),
        name="saxs",
    )
    st = qi.empty()
    view = view_of(frames, slot=slot, slots=("unpumped", "pumped"), key=3.0)
    qi.update(st, view)
    iq = view.products["saxs.iq"]
    assert iq.shape == (6, 60) and view.products["saxs.iqphi"].shape == (6, 12, 60)
    assert np.all(np.isnan(iq[4])) and np.isfinite(iq[0]).sum() > 50
    one = QPhiIntegrator(geometry=geometry_table(), npt_q=60, npt_phi=12, q_range=Q_RANGE)
    for k in (0, 3):
        _, r = _integrate(one, frames[k : k + 1])
        np.testing.assert_allclose(iq[k], r["I_q"].data[0, 0], rtol=1e-12, equal_nan=True)
    assert view.records["saxs.frames"] == 5
    # a one-frame train takes the pixel-split path of the kernels: same per-frame I(q)
    single = view_of(frames[3:4], slot=[1], slots=("unpumped", "pumped"))
    qi.update(qi.empty(), single)
    np.testing.assert_allclose(single.products["saxs.iq"][0], iq[3], rtol=1e-12, equal_nan=True)
    # the per-frame path fills the state like the slot path
    ref = QPhiIntegrator(
        geometry=geometry_table(),
        npt_q=60,
        npt_phi=12,
        q_range=Q_RANGE,
        slots=("unpumped", "pumped"),
    )
    sr = ref.empty()
    ref.update(sr, view_of(frames, slot=slot, slots=("unpumped", "pumped"), key=3.0))
    for name in st.arrays:
        np.testing.assert_allclose(st[name], sr[name], rtol=1e-12)
    res = qi.finalize(st)
    assert res["I_q"].dims == ("scan", "slot", "q")
    assert list(res["I_q"].coords["slot"]) == ["unpumped", "pumped"]
    assert res["I_q"].coords["scan"].tolist() == [3.0]
    d = res["dI_q"].data[0]
    expect = res["I_q"].data[0, 1] - res["I_q"].data[0, 0]
    np.testing.assert_allclose(d, expect)
    ok = np.isfinite(d)
    # pumped frames are twice as bright: dI ~ I_unpumped
    np.testing.assert_allclose(d[ok], res["I_q"].data[0, 0][ok], rtol=0.15)
    assert res["dI_qphi"].dims == ("scan", "phi", "q")
