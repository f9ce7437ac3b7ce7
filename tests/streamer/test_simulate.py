"""The detector simulators: determinism, ground truth against the generated data, streaming."""

from __future__ import annotations

import argparse
import threading

import numpy as np
import pytest
import zmq

from beamstream.simulate import (
    FIRST_TRAIN_ID,
    DsscSimulator,
    Geometry,
    RixsSimulator,
    SaxsSimulator,
    make_simulator,
    simulate,
    write_poni,
    xgm_frame_indices,
)
from beamstream.simulate import cli as sim_cli
from beamstream.simulate.dssc import DEFAULT_PATTERN
from beamstream.streamer.protocol import decode_train

T0 = FIRST_TRAIN_ID


@pytest.fixture(scope="module")
def saxs() -> SaxsSimulator:
    return SaxsSimulator(seed=7)


@pytest.fixture(scope="module")
def dssc() -> DsscSimulator:
    return DsscSimulator(seed=3, frames=40, delays=(-1.0, 0.5, 2.0), trains_per_step=6)


@pytest.fixture(scope="module")
def rixs() -> RixsSimulator:
    return RixsSimulator(seed=5, shape=(512, 512), photons=300)


# -- common -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, options",
    [("saxs", {"geometry": Geometry(shape=(64, 96))}), ("dssc", {"frames": 8}), ("rixs", {})],
)
def test_deterministic_per_seed_and_train(name: str, options: dict) -> None:
    if name == "rixs":
        options = {"shape": (128, 160), "photons": 50}
    a = make_simulator(name, seed=11, **options)
    b = make_simulator(name, seed=11, **options)
    c = make_simulator(name, seed=12, **options)
    later = b.train(T0 + 5)  # out of order: every train stands alone
    first = b.train(T0)
    ta, tb, tc = a.train(T0), first, c.train(T0)
    key = a.source, a.image_key
    assert np.array_equal(ta.data[key[0]][key[1]], tb.data[key[0]][key[1]])
    assert not np.array_equal(ta.data[key[0]][key[1]], tc.data[key[0]][key[1]])
    assert np.array_equal(a.train(T0 + 5).data[key[0]][key[1]], later.data[key[0]][key[1]])
    assert not np.array_equal(ta.data[key[0]][key[1]], later.data[key[0]][key[1]])
    assert ta.meta == tb.meta and ta.timestamp == tb.timestamp


@pytest.mark.parametrize("name", ["saxs", "dssc", "rixs"])
def test_metadata_and_dims(name: str) -> None:
    opts = {
        "saxs": {"geometry": Geometry(shape=(32, 32)), "scan": (2, 3)},
        "dssc": {"frames": 4},
        "rixs": {"shape": (64, 64), "photons": 10},
    }[name]
    sim = make_simulator(name, seed=1, **opts)
    train = sim.train(T0 + 12)
    assert train.train_id == T0 + 12
    assert train.timestamp == pytest.approx(sim.timestamp_of(T0) + 1.2)
    assert len(train.data) >= 2
    for src in train.data:
        meta = train.meta[src]
        assert meta["source"] == src and meta["timestamp.tid"] == T0 + 12
        assert isinstance(meta["timestamp.sec"], str) and isinstance(meta["timestamp.frac"], str)
        assert len(meta["timestamp.frac"]) == 18
        t = int(meta["timestamp.sec"]) + int(meta["timestamp.frac"]) * 1e-18
        assert t == pytest.approx(meta["timestamp"], abs=1e-6)
    img = train.data[sim.source][sim.image_key]
    dims = train.get_dims(sim.source, sim.image_key)
    assert img.ndim == 3 and img.shape[0] == sim.frames and dims[0] == "frame"
    assert img.dtype == {"saxs": np.float32, "dssc": np.uint16, "rixs": np.uint16}[name]


# -- saxs ---------------------------------------------------------------------------------------
def test_saxs_geometry_matches_pyfai_and_poni(saxs: SaxsSimulator, tmp_path) -> None:
    pyFAI = pytest.importorskip("pyFAI")
    g = saxs.geometry
    train = saxs.train(T0)
    assert Geometry.from_dict(train.data[saxs.source]) == g
    assert train.get(saxs.source, "geometry.energy") == pytest.approx(12.0)
    # a small tilted detector (rot3 too) to keep it fast; the formulas are the same
    g = Geometry(dist=0.3, rot1=0.02, rot2=-0.015, rot3=0.3, shape=(200, 300))
    write_poni(tmp_path / "sim.poni", g)
    ai = pyFAI.load(str(tmp_path / "sim.poni"))
    assert ai.dist == g.dist and ai.poni1 == g.poni1 and ai.rot2 == g.rot2 and ai.rot3 == g.rot3
    assert ai.detector.max_shape == g.shape
    assert ai.wavelength == pytest.approx(g.wavelength, rel=1e-12)
    q_ref = ai.center_array(g.shape, unit="q_nm^-1")
    np.testing.assert_allclose(g.q_nm(), q_ref, rtol=1e-10)
    chi_ref = ai.center_array(g.shape, unit="chi_rad")
    np.testing.assert_allclose(g.chi(), chi_ref, atol=1e-6)


def test_saxs_rings_at_predicted_q(saxs: SaxsSimulator, tmp_path) -> None:
    pyFAI = pytest.importorskip("pyFAI")
    write_poni(tmp_path / "sim.poni", saxs.geometry)
    ai = pyFAI.load(str(tmp_path / "sim.poni"))
    frame = saxs.train(T0 + 3).data[saxs.source][saxs.image_key][0]
    assert frame.dtype == np.float32 and frame.min() >= 0
    res = ai.integrate1d(
        frame, 3000, unit="q_nm^-1", method=("no", "histogram", "cython"),
        correctSolidAngle=True, polarization_factor=0.99, radial_range=(0.3, 4.5),
    )  # fmt: skip
    q, intensity = res.radial, res.intensity
    truth = saxs.truth
    # the corrected radial profile is the model profile, to within the Poisson noise:
    # z = (sum_signal - I(q) sum_norm) / sqrt(I(q) sum_norm) per bin is standard normal
    ok = res.count > 50
    model = truth.profile(q[ok])
    z = (res.sum_signal[ok] - model * res.sum_normalization[ok]) / np.sqrt(
        model * res.sum_normalization[ok]
    )
    assert abs(z.mean()) < 0.1 and z.std() == pytest.approx(1.0, abs=0.1)
    assert np.abs(z).max() < 5.5
    visible = [r for r in truth.rings if r.q < 3.7]  # complete rings
    assert len(visible) == 5
    for ring in visible:
        near = np.abs(q - ring.q) < 4 * ring.width
        peak = q[near][np.argmax(intensity[near])]
        assert peak == pytest.approx(ring.q, abs=0.004)  # bins are 0.0014 wide


def test_saxs_raster_scan_truth() -> None:
    geo = Geometry.from_beam_center(127.3, 128.6, dist=0.25, shape=(256, 256))
    sim = SaxsSimulator(seed=2, geometry=geo, scan=(3, 4))
    truth = [sim.train_truth(T0 + k) for k in range(12)]
    points = [t["point"] for t in truth]
    assert points[:8] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 3), (1, 2), (1, 1), (1, 0)]
    assert sorted(points) == [(i, j) for i in range(3) for j in range(4)]
    assert sim.train_truth(T0 + 12)["point"] == (0, 0)  # the scan repeats
    scan = sim.truth.scan
    xs, ys = scan.positions()
    train = sim.train(T0 + 6)
    x = train.get(scan.fast_source, scan.key)
    y = train.get(scan.slow_source, scan.key)
    assert x == pytest.approx(xs[1], abs=5 * scan.jitter) and x != xs[1]
    assert y == pytest.approx(ys[1], abs=5 * scan.jitter)
    maps = sim.truth.maps
    assert maps["strength"].shape == (3, 4) and maps["anisotropy"].max() <= 0.8
    # ring 1 is brightest at chi = orientation, by (1 + a) / (1 - a) over chi + 90 deg
    k = int(np.argmax([t["anisotropy"] * (t["strength"] > 0.3) for t in truth]))
    t = truth[k]
    frames = sim.train(T0 + k).data[sim.source][sim.image_key]
    a = sim.geometry.arrays()
    ring = np.abs(a["q"] - sim.truth.rings[0].q) < 0.01
    bg = sim.truth.background_profile(a["q"]) * a["solid_angle"]
    chi = np.degrees(a["chi"])

    def sector(centre: float) -> float:
        d = np.abs((chi - centre + 90) % 180 - 90)
        sel = ring & (d < 10)
        return float((frames[0][sel] - bg[sel]).mean())

    ratio = sector(t["orientation"]) / sector(t["orientation"] + 90)
    expected = (1 + t["anisotropy"]) / (1 - t["anisotropy"])
    assert ratio == pytest.approx(expected, rel=0.15)
    assert np.allclose(sim.expected_image(T0 + k), frames.mean(0), atol=6 * frames.std() + 50)


# -- dssc ---------------------------------------------------------------------------------------
def test_xgm_frame_indices() -> None:
    assert xgm_frame_indices(4, DEFAULT_PATTERN).tolist() == [0, 2, 4, 6]
    assert xgm_frame_indices(3, ["image"]).tolist() == [0, 1, 2]
    assert xgm_frame_indices(3, ["pumped", "unpumped_dark"]).tolist() == [0, 2, 4]


def test_dssc_trains_layout(dssc: DsscSimulator) -> None:
    train = dssc.train(T0 + 7)
    t = dssc.train_truth(T0 + 7)
    assert t["delay"] == 0.5 and t["step"] == 1
    assert train.get(dssc.delay_source, dssc.delay_key) == 0.5
    xgm = train.get(dssc.xgm_source, dssc.xgm_key)
    assert xgm.shape == (1000,) and xgm.dtype == np.float32
    assert np.array_equal(xgm[:20], t["xgm"]) and np.all(xgm[20:] == 1.0)
    assert t["xgm_frames"].tolist() == list(range(0, 40, 2))  # pulse k -> frame 2k
    img = train.data[dssc.source][dssc.image_key]
    assert img.shape == (40, 128, 512) and img.dtype == np.uint16
    # the FEL frames' intensity follows the XGM pulse they are mapped to
    dark = dssc.truth.dark[t["frame_slot"]].astype(np.float64)
    net = (img - dark).sum(axis=(1, 2))[t["xgm_frames"]]
    unpumped = t["frame_slot"][t["xgm_frames"]] == 2
    assert unpumped.tolist() == [False, True] * 10
    assert np.corrcoef(net[unpumped], xgm[:20][unpumped])[0, 1] > 0.99
    np.testing.assert_allclose(t["frame_scale"][t["xgm_frames"]], xgm[:20] / 1500.0, rtol=1e-6)


def _slot_means(sim: DsscSimulator, tids: range) -> tuple[np.ndarray, np.ndarray]:
    """Per slot: mean of (frame - dark) / (XGM scale) over FEL frames, mean raw over dark frames."""
    truth = sim.truth
    nslot = len(truth.pattern)
    acc = np.zeros((nslot, 128, 512))
    n = np.zeros(nslot)
    for tid in tids:
        t = sim.train_truth(tid)
        img = sim.train(tid).data[sim.source][sim.image_key].astype(np.float64)
        for f, j in enumerate(t["frame_slot"]):
            if t["frame_scale"][f] > 0:
                acc[j] += (img[f] - truth.dark[j]) / t["frame_scale"][f]
            else:
                acc[j] += img[f]
            n[j] += 1
    return acc / n[:, None, None], n


def test_dssc_slot_means_approach_truth(dssc: DsscSimulator) -> None:
    truth = dssc.truth
    means, n = _slot_means(dssc, range(T0 + 6, T0 + 12))  # step 1: delay 0.5 ps
    assert n.tolist() == [60, 60, 60, 60]
    for j, name in enumerate(truth.pattern):
        expected = truth.expected_mean(0.5, j)
        if "dark" not in name:
            expected = expected - truth.dark[j]
        resid = means[j] - expected
        sigma = np.sqrt(truth.read_noise**2 + truth.signal_image(0.5, j)) / np.sqrt(n[j])
        assert abs(resid.mean()) < 0.02
        assert np.std(resid / sigma) == pytest.approx(1.0, abs=0.25)


def test_dssc_pump_probe_signal_recovered(dssc: DsscSimulator) -> None:
    truth = dssc.truth
    roi = truth.roi
    for step, delay in enumerate(truth.delays):
        tids = range(T0 + 6 * step, T0 + 6 * step + 6)
        means, _ = _slot_means(dssc, tids)
        ratio = means[0][roi].sum() / means[2][roi].sum()
        assert ratio == pytest.approx(1 - truth.signal(delay), abs=0.01)
        outside = means[0][:, :300].sum() / means[2][:, :300].sum()
        assert outside == pytest.approx(1.0, abs=0.01)
    assert truth.signal(-1.0) < 1e-6 and truth.signal(0.5) > 0.25


# -- rixs ---------------------------------------------------------------------------------------
def test_rixs_photons_where_the_truth_says(rixs: RixsSimulator) -> None:
    truth = rixs.truth
    tid = T0 + 2
    img = rixs.train(tid).data[rixs.source][rixs.image_key][0].astype(np.float64)
    img -= truth.dark_offset
    ph = rixs.train_truth(tid)
    n = len(ph["x"])
    assert 250 < n < 350 and ph["count"].tolist() == [n]
    np.testing.assert_allclose(ph["adu"], ph["energy"] / 3.6 / 1.06)
    assert truth.adu_per_photon == pytest.approx(930 / 3.6 / 1.06)
    total_noise = truth.read_noise * np.sqrt(img.size)
    assert abs(img.sum() - ph["adu"].sum()) < 5 * total_noise
    errors, sums = [], []
    for k in range(n):
        y, x = ph["y"][k], ph["x"][k]
        others = np.hypot(ph["y"] - y, ph["x"] - x)
        iy, ix = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        if np.sort(others)[1] < 6 or not (2 <= iy < 510 and 2 <= ix < 510):
            continue
        w = img[iy - 2 : iy + 3, ix - 2 : ix + 3]
        rows, cols = np.mgrid[iy - 2 : iy + 3, ix - 2 : ix + 3]
        errors.append(((w * rows).sum() / w.sum() - y, (w * cols).sum() / w.sum() - x))
        sums.append(w.sum() / ph["adu"][k])
    errors = np.array(errors)
    assert len(errors) > 60
    assert np.all(np.abs(errors.mean(axis=0)) < 0.03)
    assert np.all(np.sqrt((errors**2).mean(axis=0)) < 0.15)
    assert np.median(sums) == pytest.approx(1.0, abs=0.03)


def test_rixs_curvature_and_calibration(rixs: RixsSimulator) -> None:
    truth = rixs.truth
    ph = rixs.train_truth(T0)
    np.testing.assert_allclose(truth.energy(ph["y"], ph["x"]), ph["energy"], atol=1e-9)
    np.testing.assert_allclose(
        ph["y_corrected"], ph["y"] - truth.a * ph["x"] - truth.b * ph["x"] ** 2
    )
    elastic = ph["line"] == 0
    assert np.median(ph["y_corrected"][elastic]) == pytest.approx(truth.y0, abs=1.0)
    assert truth.intercept + truth.slope * truth.y0 == pytest.approx(truth.incident_energy)
    assert truth.y_of(truth.incident_energy, 100.0) == pytest.approx(
        truth.y0 + truth.a * 100 + truth.b * 1e4
    )
    # in the image, the elastic line follows the curve: corrected hit pixels pile up at y0
    img = rixs.train(T0).data[rixs.source][rixs.image_key][0].astype(np.float64)
    img -= truth.dark_offset
    rows, cols = np.nonzero(img > 15 * truth.read_noise)
    w = img[rows, cols]

    def spread(a: float, b: float) -> tuple[float, float]:
        yc = rows - a * cols - b * cols**2
        near = np.abs(yc - truth.y0) < 4
        centre = np.average(yc[near], weights=w[near])
        return centre, float(np.sqrt(np.average((yc[near] - centre) ** 2, weights=w[near])))

    centre, width = spread(truth.a, truth.b)
    assert centre == pytest.approx(truth.y0, abs=0.3)
    assert width < 0.9 and spread(0.0, 0.0)[1] > width + 0.25  # uncorrected: smeared


# -- serving ------------------------------------------------------------------------------------
def _request(ep: str, n: int, timeout_ms: int = 5000) -> list:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(ep)
    trains = []
    try:
        for _ in range(n):
            sock.send(b"next")
            if not sock.poll(timeout_ms):
                break
            trains.append(decode_train(sock.recv_multipart(copy=False)))
    finally:
        sock.close()
    return trains


def test_simulate_serves_rep(endpoint: str) -> None:
    result: dict = {}
    kw = {"shape": (64, 80), "photons": 20}
    th = threading.Thread(
        target=lambda: result.update(simulate("rixs", endpoint, rate=0, trains=4, seed=9, **kw))
    )
    th.start()
    trains = _request(endpoint, 4)
    th.join(10)
    assert not th.is_alive()
    assert [t.train_id for t in trains] == [T0 + k for k in range(4)]
    ref = RixsSimulator(seed=9, **kw)
    src, key = ref.source, ref.image_key
    for t in trains:
        assert np.array_equal(t.data[src][key], ref.train(t.train_id).data[src][key])
        assert t.get_dims(src, key) == ("frame", "y", "x")
        assert t.meta[src]["timestamp"] > ref.timestamp_of(T0)  # live time stamps
    assert result["sent"] == 4 and result["last_train_id"] == T0 + 3
    assert not result["interrupted"]


def test_simulate_paced_and_stoppable(endpoint: str) -> None:
    stop = threading.Event()
    result: dict = {}
    th = threading.Thread(
        target=lambda: result.update(
            simulate(
                "saxs", endpoint, rate=20.0, stop_event=stop, geometry=Geometry(shape=(32, 32))
            )
        )
    )
    th.start()
    trains = _request(endpoint, 8)
    stop.set()
    th.join(5)
    assert not th.is_alive() and len(trains) == 8
    stamps = [t.timestamp for t in trains]
    assert 7 / 20 * 0.8 < stamps[-1] - stamps[0] < 7 / 20 * 2.0
    assert result["interrupted"] and result["sent"] == 8


def test_cli_simulate(endpoint: str, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="beamstream")
    sim_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["simulate", "--detector", "dssc", "--endpoint", endpoint, "--rate", "0",
         "--trains", "2", "--frames", "4", "--seed", "3", "--quiet"]
    )  # fmt: skip
    assert args.func is sim_cli.handler
    assert parser.parse_args(["simulate", "--scan", "20x30"]).scan == (20, 30)
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--scan", "20by30"])
    got: list = []
    th = threading.Thread(target=lambda: got.extend(_request(endpoint, 2)))
    th.start()
    assert args.func(args) == 0
    th.join(5)
    assert [t.data[DsscSimulator.source]["image.data"].shape for t in got] == [(4, 128, 512)] * 2
    out = capsys.readouterr().out
    assert "dssc: sent 2 trains" in out
