"""Photon detection against synthetic frames with known truth (both modes)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from beamstream.processors.rixs import PhotonCentroider
from tests.processors.rixs.synth import ADU_930, match, photon_frame, render, view

SHAPE = (256, 256)
MODES = {
    "xfel-sigma": dict(mode="xfel", threshold_sigma=3.5, photon_energy=930.0),
    "xfel-energy": dict(mode="xfel", photon_energy=930.0),
    "esrf": dict(mode="esrf", photon_energy=930.0),
}


def centroider(**kw) -> PhotonCentroider:
    kw.setdefault("frame_shape", list(SHAPE))
    kw.setdefault("hit_list", True)
    return PhotonCentroider(**kw)


def run(proc: PhotonCentroider, frames: np.ndarray, **kw):
    state = proc.empty()
    v = view(frames, **kw)
    proc.update(state, v)
    return state, v


@pytest.fixture(scope="module", autouse=True)
def warm_numba():
    """Compile (or load from the cache) the kernels once for the frame types used here."""
    for kw in MODES.values():
        for dtype in (np.float64, np.uint16):
            p = PhotonCentroider(frame_shape=[16, 16], **kw)
            p.update(p.empty(), view(np.zeros((1, 16, 16), dtype)))


@pytest.mark.parametrize("key", list(MODES))
def test_isolated_photons_found_and_located(key):
    rng = np.random.default_rng(11)
    proc = centroider(**MODES[key])
    truth, found_y, found_x, n_hits = [], [], [], 0
    for _ in range(4):
        img, pos = photon_frame(rng, 150, SHAPE, noise=2.5)
        _, v = run(proc, img)
        hits = v.records[f"{proc.name}.hits"]
        idx = match(pos, hits["y"], hits["x"])
        truth.append(pos[idx >= 0])
        found_y.append(hits["y"][idx[idx >= 0]])
        found_x.append(hits["x"][idx[idx >= 0]])
        n_hits += len(hits["y"])
        assert (idx >= 0).mean() >= 0.98, f"efficiency {(idx >= 0).mean():.3f}"
        assert not hits["double"].any()
    truth = np.concatenate(truth)
    dy = np.concatenate(found_y) - truth[:, 0]
    dx = np.concatenate(found_x) - truth[:, 1]
    rms = np.sqrt(np.mean(dy**2 + dx**2) / 2)
    assert rms < 0.1, f"position rms {rms:.3f} px"
    # every hit is a true photon (no false positives among 600 photons)
    assert n_hits == len(truth)


def test_centre_of_mass_bias_is_towards_pixel_centres():
    """The 4x4 CoM pulls positions towards the 2x2 block centre; measured without noise."""
    proc = centroider(mode="xfel", photon_energy=930.0)
    frac = np.linspace(0.05, 0.95, 10)
    pos = np.array([(20.0 + 10 * k + f, 100.3) for k, f in enumerate(frac)])
    _, v = run(proc, render(SHAPE, pos, sigma=0.6))
    y = v.records[f"{proc.name}.hits"]["y"]
    bias = y - pos[:, 0]
    # small, and odd about the pixel edge at fraction 0.5 (block centre): positive below
    assert np.abs(bias).max() < 0.1
    assert np.all(bias[frac < 0.45] > 0) and np.all(bias[frac > 0.55] < 0)


@pytest.mark.parametrize("key", list(MODES))
def test_noise_only_frames(key):
    rng = np.random.default_rng(5)
    proc = centroider(**MODES[key])
    hits = 0
    for _ in range(4):
        _, v = run(proc, rng.normal(0.0, 2.5, SHAPE))
        hits += int(v.records[f"{proc.name}.hits_per_frame"][0])
    if key == "xfel-sigma":
        # a local maximum above mean + 3.5 std is at least an exceedance: Gaussian tail bound
        n_sums = 4 * (SHAPE[0] - 1) * (SHAPE[1] - 1)
        assert hits <= 1.5 * norm.sf(3.5) * n_sums, hits
    else:
        # thresholds from the photon energy sit far above the read noise
        assert hits == 0


@pytest.mark.parametrize("key", ["xfel-energy", "esrf"])
def test_two_photons_in_one_spot_are_a_double(key):
    proc = centroider(**MODES[key], pixel_range=[-0.5, 255.5], bins=256)
    # two photons near a pixel corner: their charge spreads over four pixels, none of which
    # exceeds one photon (esrf spot centres must lie below high_fraction * ADU)
    pos = np.array([[100.42, 80.58], [100.47, 80.36], [50.3, 200.2]])
    img = render(SHAPE, pos, sigma=0.4)
    assert img[99:102, 79:82].max() < ADU_930
    state, v = run(proc, img)
    hits = v.records[f"{proc.name}.hits"]
    assert len(hits["y"]) == 2
    dbl = hits["double"]
    assert dbl.tolist() == [False, True]  # raster order: the single at row 50 first
    assert abs(hits["y"][1] - 100.445) < 0.1 and abs(hits["x"][1] - 80.47) < 0.1
    assert hits["sum"][1] == pytest.approx(2 * ADU_930, rel=0.05)
    assert state["n_double"][0].tolist() == [1] and state["n_single"][0].tolist() == [1]
    spec = proc.finalize(state)
    total = spec["spectrum"].data[0, 0]
    double = spec["spectrum_double"].data[0, 0]
    assert total.sum() == 3 and double.sum() == 1
    k = int(np.floor(hits["y"][1] + 0.5))  # one bin per pixel starting at -0.5
    assert total[k] == 2 and double[k] == 1


def test_border_photons_dropped_xfel():
    """xfel keeps a hit only when the 4x4 window of its 2x2 block lies inside the ROI."""
    h, w = SHAPE
    inside = [(1.7, 60.0), (h - 2.6, 90.0), (70.0, 1.7), (110.0, w - 2.6)]
    border = [(0.3, 30.0), (h - 1.4, 150.0), (130.0, 0.4), (170.0, w - 1.4)]
    proc = centroider(mode="xfel", photon_energy=930.0)
    _, v = run(proc, render(SHAPE, np.array(inside + border), sigma=0.4))
    hits = v.records[f"{proc.name}.hits"]
    idx = match(np.array(inside + border), hits["y"], hits["x"])
    assert (idx[:4] >= 0).all() and (idx[4:] == -1).all()
    assert len(hits["y"]) == 4


def test_border_photons_dropped_esrf():
    """esrf drops spots whose brightest pixel is on the ROI's outer row or column."""
    h, w = SHAPE
    inside = [(1.1, 60.0), (h - 2.1, 90.0), (70.0, 1.1), (110.0, w - 2.1)]
    border = [(0.2, 30.0), (h - 1.2, 150.0), (130.0, 0.2), (170.0, w - 1.2)]
    proc = centroider(mode="esrf", photon_energy=930.0)
    _, v = run(proc, render(SHAPE, np.array(inside + border), sigma=0.4))
    hits = v.records[f"{proc.name}.hits"]
    idx = match(np.array(inside + border), hits["y"], hits["x"])
    assert (idx[:4] >= 0).all() and (idx[4:] == -1).all()


def test_roi_offsets_positions_and_borders():
    proc = PhotonCentroider(
        mode="xfel", photon_energy=930.0, roi={"y": [40, 120], "x": [30, 200]}, hit_list=True
    )
    pos = np.array([[80.3, 100.6], [40.2, 100.0], [100.0, 210.0]])  # inside, ROI edge, outside
    _, v = run(proc, render(SHAPE, pos, sigma=0.4))
    hits = v.records[f"{proc.name}.hits"]
    assert len(hits["y"]) == 1
    assert abs(hits["y"][0] - 80.3) < 0.1 and abs(hits["x"][0] - 100.6) < 0.1


def test_plateau_gives_one_hit():
    img = np.zeros((32, 32))
    img[10:13, 10:13] = 100.0  # 2x2 sums: a 2x2 plateau of 400
    img[20:22, 5:8] = 100.0  # 2x2 sums: a 1x2 plateau of 400
    proc = centroider(mode="xfel", threshold=50.0, frame_shape=[32, 32])
    _, v = run(proc, img)
    hits = v.records[f"{proc.name}.hits"]
    assert len(hits["y"]) == 2
    assert hits["y"][0] == pytest.approx(11.0) and hits["x"][0] == pytest.approx(11.0)
    assert hits["y"][1] == pytest.approx(20.5) and hits["x"][1] == pytest.approx(6.0)


def test_nan_pixels_are_never_hits():
    rng = np.random.default_rng(3)
    img, pos = photon_frame(rng, 120, SHAPE, noise=2.5)
    nan_at = [(int(round(y)), int(round(x))) for y, x in pos[:10]]
    nan_at += [tuple(p) for p in rng.integers(0, 256, (30, 2))]
    for i, j in nan_at:
        img[i, j] = np.nan
    nan_mask = np.isnan(img)
    for key in MODES:
        proc = centroider(**MODES[key])
        state, v = run(proc, img)
        hits = v.records[f"{proc.name}.hits"]
        assert np.isfinite(hits["y"]).all() and np.isfinite(hits["sum"]).all()
        assert np.isfinite(v.records[f"{proc.name}.hits_per_frame"]).all()
        # the nearest pixel and its 3x3 neighbourhood lie inside the hit's window (4x4 or 3x3)
        for y, x in zip(hits["y"], hits["x"], strict=True):
            i, j = int(round(y)), int(round(x))
            assert not nan_mask[i - 1 : i + 2, j - 1 : j + 2].any()
        # the photons whose spot holds a NaN are lost; the others are found
        far = [
            k
            for k, (y, x) in enumerate(pos)
            if not nan_mask[int(y) - 3 : int(y) + 5, int(x) - 3 : int(x) + 5].any()
        ]
        idx = match(pos[far], hits["y"], hits["x"])
        assert (idx >= 0).mean() >= 0.98
        assert (match(pos[:10], hits["y"], hits["x"]) == -1).all()


def test_candidate_cap_overflow_is_counted():
    rng = np.random.default_rng(0)
    saturated = rng.uniform(1000.0, 5000.0, SHAPE)  # thousands of local maxima
    proc = centroider(mode="xfel", threshold=100.0, max_candidates=50, slots=["image"])
    state = proc.empty()
    v = view(np.stack([saturated, np.zeros(SHAPE)]))
    proc.update(state, v)
    over = v.records[f"{proc.name}.overflow_per_frame"]
    assert over[0] > 1000 and over[1] == 0
    assert v.records[f"{proc.name}.hits_per_frame"][0] == 50 + over[0]
    assert state["overflow_frames"][0].tolist() == [1]
    assert state["overflow_hits"][0].tolist() == [over[0]]
    assert state["frames"][0].tolist() == [1]  # only the clean frame counts
    assert state["single"].sum() == 0 and state["n_single"].sum() == 0
    # esrf: spot centres above high_fraction are cosmics, never candidates
    proc = centroider(mode="esrf", photon_energy=930.0, max_candidates=50)
    noisy = rng.uniform(50.0, 240.0, SHAPE)
    state, v = run(proc, noisy)
    assert v.records[f"{proc.name}.overflow_per_frame"][0] > 0
    assert state["overflow_frames"][0].tolist() == [1]


def _rixstoolbox_spc(img, adu, low=0.2, high=1.0, single=0.2, double=1.5):
    """Plain-numpy port of RixsToolBox's single-photon counting (3x3 spots), XFEL classification."""
    offs = np.arange(3) - 1
    core = img[1:-1, 1:-1]
    with np.errstate(invalid="ignore"):
        cand = np.argwhere((core > low * adu) & (core < high * adu)) + 1
    out = []
    for i, j in cand:
        spot = img[i - 1 : i + 2, j - 1 : j + 2]
        if np.isnan(spot).any() or (spot > img[i, j]).any():
            continue
        spot = np.clip(spot, 0, None)
        total = spot.sum()
        if total < single * adu:
            continue
        yc = (spot.sum(axis=1) * offs).sum() / total
        xc = (spot.sum(axis=0) * offs).sum() / total
        out.append((i + yc, j + xc, total, total >= double * adu))
    return np.array(out).reshape(-1, 4)


def test_esrf_matches_rixstoolbox_port():
    rng = np.random.default_rng(21)
    proc = centroider(mode="esrf", photon_energy=930.0)
    n_compared = 0
    for _ in range(3):
        pos = rng.uniform(0, 255, (300, 2))  # overlapping photons, border photons, doubles
        img = render(SHAPE, pos, sigma=0.5) + rng.normal(0, 3.0, SHAPE)
        img[rng.integers(0, 256, 5), rng.integers(0, 256, 5)] = 5000.0  # cosmics
        ref = _rixstoolbox_spc(img, ADU_930)
        _, v = run(proc, img)
        hits = v.records[f"{proc.name}.hits"]
        assert len(hits["y"]) == len(ref)
        np.testing.assert_allclose(hits["y"], ref[:, 0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(hits["x"], ref[:, 1], rtol=0, atol=1e-9)
        np.testing.assert_allclose(hits["sum"], ref[:, 2], rtol=1e-12)
        assert hits["double"].tolist() == ref[:, 3].astype(bool).tolist()
        n_compared += len(ref)
    assert n_compared > 500 and 0 < sum(_rixstoolbox_spc(img, ADU_930)[:, 3]) < len(ref)


def test_esrf_equal_neighbours_are_both_kept():
    """RixsToolBox keeps each spot centre with no strictly greater neighbour (double counts)."""
    img = np.zeros((16, 16))
    img[8, 7:9] = 120.0
    proc = centroider(mode="esrf", photon_energy=930.0, frame_shape=[16, 16])
    _, v = run(proc, img)
    hits = v.records[f"{proc.name}.hits"]
    assert hits["x"].tolist() == [7.5, 7.5] and hits["y"].tolist() == [8.0, 8.0]


def test_uint16_frames_and_dark_image(tmp_path):
    rng = np.random.default_rng(8)
    img, pos = photon_frame(rng, 100, SHAPE, noise=2.5)
    dark = rng.normal(300.0, 20.0, SHAPE)  # a structured pedestal
    raw = np.clip(np.rint(img + dark), 0, 65535).astype(np.uint16)
    path = tmp_path / "dark.npy"
    np.save(path, dark)
    proc = PhotonCentroider(mode="xfel", threshold_sigma=3.5, dark=str(path), hit_list=True)
    _, v = run(proc, raw)
    hits = v.records[f"{proc.name}.hits"]
    idx = match(pos, hits["y"], hits["x"])
    assert (idx >= 0).mean() >= 0.98 and len(hits["y"]) == len(pos)
