"""PhotonCentroider state: merge laws, scan bins and slots, results, dark slots, parameters."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.params import ParamError
from beamstream.processors.rixs import PhotonCentroider
from tests.processors.rixs.synth import ADU_930, photon_frame, render, view

SHAPE = (128, 160)
SLOTS = ("pumped", "unpumped", "dark")


def centroider(**kw) -> PhotonCentroider:
    base = dict(
        mode="xfel",
        photon_energy=930.0,
        frame_shape=list(SHAPE),
        curvature=[0.01, -2e-5],
        energy_calibration=[498.27, 0.018387],
        slots=list(SLOTS[:2]),
        bins=64,
        pixel_range=[-0.5, 127.5],
    )
    base.update(kw)
    return PhotonCentroider(**base)


def trains(n: int, seed: int = 0):
    """Views of ``n`` trains: 3 frames (pumped, unpumped, rejected), scan keys 0..2, monitors."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        frames = np.stack([photon_frame(rng, 40, SHAPE)[0] for _ in range(3)])
        v = view(frames, scan_key=float(t % 3), train_id=t, slots=SLOTS[:2],
                 frame_slot=np.array([0, 1, -1]))  # fmt: skip
        v.products["monitor"] = np.array([0.5, 1.25, 3.0]) * (t + 1)  # exact binary fractions
        out.append(v)
    return out


@pytest.fixture(scope="module")
def views():
    return trains(9)


def fold(proc, views):
    state = proc.empty()
    for v in views:
        proc.update(state, v)
    return state


def test_merge_laws(views):
    proc = centroider()
    whole = fold(proc, views)
    a, b, c = (fold(proc, views[k : k + 3]) for k in (0, 3, 6))
    assert whole["single"].sum() > 500
    assert a.merge(b).equals(b.merge(a))
    assert a.merge(b).merge(c).equals(a.merge(b.merge(c)))
    assert a.merge(b).merge(c).equals(whole)  # one piece == k pieces, bit for bit
    assert proc.merge(c, proc.merge(a, b)).equals(whole)
    inplace = a.copy()
    inplace.merge_into(c)
    inplace.merge_into(b)
    assert inplace.equals(whole)
    # a different configuration does not merge
    with pytest.raises(ValueError, match="different configurations"):
        a.merge(fold(centroider(curvature=[0.0, 0.0]), views[:1]))


def test_results(views):
    proc = centroider()
    state = fold(proc, views)
    res = proc.finalize(state)
    spec = res["spectrum"]
    assert spec.dims == ("scan", "slot", "energy")
    assert spec.coords["scan"].tolist() == [0.0, 1.0, 2.0]
    assert spec.coords["slot"].tolist() == ["pumped", "unpumped"]
    centres = -0.5 + 2.0 * (np.arange(64) + 0.5)
    np.testing.assert_allclose(spec.coords["energy"], 498.27 + 0.018387 * centres, rtol=1e-15)
    assert spec.coord_units == {"energy": "eV"} and spec.units == "photons"
    single, double = state["single"], state["double"]
    assert np.array_equal(spec.data, single + 2 * double)
    frames = state["frames"]
    assert frames.tolist() == [[3, 3]] * 3  # 9 trains over 3 scan bins, rejected frames left out
    per_frame = res["spectrum_per_frame"].data
    np.testing.assert_allclose(per_frame, spec.data / 3.0, rtol=1e-15)
    # monitors: 0.5 * (t+1) on pumped, 1.25 * (t+1) on unpumped frames; bin k: t = k, k+3, k+6
    mon = res["monitor"].data
    np.testing.assert_allclose(mon[:, 0], 0.5 * (3 * np.arange(3) + 12), rtol=1e-15)
    per_mon = res["spectrum_per_monitor"].data
    np.testing.assert_allclose(per_mon, spec.data / mon[..., None], rtol=1e-15)
    diff = res["difference"]
    assert diff.coords["pair"].tolist() == ["pumped"]
    np.testing.assert_allclose(diff.data[:, 0], per_frame[:, 0] - per_frame[:, 1], rtol=1e-15)
    # the hit counters agree with the histograms (all photons lie inside the pixel range here)
    assert np.array_equal(state["n_single"], single.sum(axis=2))
    assert np.array_equal(res["n_double"].data, double.sum(axis=2))


def test_hit_records_and_curvature(views):
    proc = centroider(hit_list=25)
    state = proc.empty()
    v = views[0]
    proc.update(state, v)
    hits = v.records[f"{proc.name}.hits"]
    per_frame = v.records[f"{proc.name}.hits_per_frame"]
    assert per_frame[2] == -1 and per_frame[0] > 0 and per_frame[1] > 0
    assert len(hits["x"]) == 25
    assert v.records[f"{proc.name}.hits_truncated"] == per_frame[:2].sum() - 25
    np.testing.assert_allclose(
        hits["y_corrected"], hits["y"] - (0.01 * hits["x"] - 2e-5 * hits["x"] ** 2), rtol=1e-15
    )
    # the histogram is of the corrected positions
    proc2 = centroider(hit_list=True)
    s2 = proc2.empty()
    proc2.update(s2, views[1])
    h = views[1].records[f"{proc2.name}.hits"]
    pumped = h["frame"] == 0
    expected = np.histogram(h["y_corrected"][pumped], np.linspace(-0.5, 127.5, 65))[0]
    assert np.array_equal(s2["single"][0, 0], expected)


def test_dark_slots_for_centroiding():
    rng = np.random.default_rng(7)
    pedestal = rng.normal(500.0, 30.0, SHAPE)
    img, pos = photon_frame(rng, 40, SHAPE)
    proc = centroider(dark="slots", slots=["image", "dark"], hit_list=True)
    state = proc.empty()
    # a train before any dark: skipped and counted
    proc.update(state, view((pedestal + img)[None], slots=("image", "dark")))
    assert state["no_dark_frames"][0].tolist() == [1] and state["frames"][0].tolist() == [0]
    darks = pedestal + rng.normal(0, 1.0, (2, *SHAPE))
    frames = np.stack([darks[0], pedestal + img + rng.normal(0, 1.0, SHAPE), darks[1]])
    v = view(frames, slots=("image", "dark"), frame_slot=np.array([1, 0, 1]))
    proc.update(state, v)
    hits = v.records[f"{proc.name}.hits"]
    assert len(hits["x"]) == len(pos) and state["dark_frames"].tolist() == [2]
    assert proc.finalize(state)["spectrum"].coords["slot"].tolist() == ["image"]


def test_unknown_slot_is_an_error():
    proc = centroider()
    with pytest.raises(ValueError, match="not among the configured slots"):
        proc.update(proc.empty(), view(np.zeros((1, *SHAPE)), slots=("other",)))


def test_empty_and_frameless_views():
    proc = centroider()
    state = proc.empty()
    v = view(np.zeros((1, *SHAPE)))
    v.frames = None
    proc.update(state, v)
    assert len(state.keys) == 0
    res = proc.finalize(state)
    assert res["spectrum"].data.shape == (0, 2, 64)


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": -5}, "threshold"),
        ({"threshold_sigma": 0}, "threshold_sigma"),
        ({"threshold": 10.0, "threshold_sigma": 3.0}, "threshold_sigma"),
        ({"photon_energy": -930.0}, "photon_energy"),
        ({"photon_energy": float("nan")}, "photon_energy"),
        ({"photon_energy": None}, "threshold"),
        ({"mode": "esrf", "photon_energy": None}, "photon_energy"),
        ({"mode": "esrf", "threshold": 10.0}, "threshold"),
        ({"mode": "esrf", "low_fraction": 1.2}, "high_fraction"),
        ({"mode": "magic"}, "mode"),
        ({"roi": {"y": [0, 200]}}, "roi"),
        ({"roi": {"x": [100, 50]}}, "roi.x"),
        ({"roi": {"z": [0, 5]}}, "roi"),
        ({"roi": {"y": [10, 12]}}, "roi"),  # smaller than the 4x4 window
        ({"bins": 0}, "bins"),
        ({"pixel_range": [5.0, 5.0]}, "pixel_range"),
        ({"curvature": [0.1, "x"]}, "curvature"),
        ({"energy_calibration": [500.0, 0.0]}, "energy_calibration"),
        ({"double_threshold": 0.0}, "double_threshold"),
        ({"max_candidates": 0}, "max_candidates"),
        ({"hit_list": -1}, "hit_list"),
        ({"dark": "missing.npy"}, "dark"),
        ({"dark": np.zeros((10, 10))}, "dark"),
        ({"slots": ["dark"]}, "slots"),
        ({"slots": ["a", "a"]}, "slots"),
        ({"subtract_mean": "yes"}, "subtract_mean"),
    ],
)
def test_bad_parameters(kw, key):
    with pytest.raises(ParamError) as info:
        centroider(**kw)
    assert info.value.key == key


def test_roi_checked_at_first_frame_without_frame_shape():
    proc = PhotonCentroider(photon_energy=930.0, roi={"y": [0, 100], "x": [0, 300]})
    with pytest.raises(ParamError, match="inside the 128x160"):
        proc.update(proc.empty(), view(np.zeros((1, *SHAPE))))
    with pytest.raises(ParamError, match="pixel_range"):
        PhotonCentroider(photon_energy=930.0)  # no way to know the energy bins


def test_double_threshold_override_and_describe():
    pos = np.array([[60.4, 80.3]])
    img = render(SHAPE, pos, adu=ADU_930)
    proc = centroider(double_threshold=0.5 * ADU_930, hit_list=True, slots=["image"])
    _, v = proc.empty(), view(img)
    proc.update(proc.empty(), v)
    assert v.records[f"{proc.name}.hits"]["double"].tolist() == [True]
    assert "xfel" in proc.describe() and "64 bins" in proc.describe()
