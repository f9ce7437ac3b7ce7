"""config/scan_map.toml against the SAXS simulator's raster scan over a real socket."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.simulate import SaxsSimulator
from tests.simrun import run_on_simulator


@pytest.mark.timeout(120)
def test_simulated_scan_maps_recovered(endpoint):
    ny, nx = 6, 8
    sim = SaxsSimulator(seed=4, scan=(ny, nx))
    n = ny * nx
    runner = run_on_simulator(sim, "scan_map.toml", endpoint, n)
    results = runner.hub.latest().results
    maps, attrs = results["maps"], results["attrs"]
    truth = sim.truth.maps
    xs, ys = sim.truth.scan.positions()

    # positions: exactly the scan's nominal grid (snake order and 0.2 um jitter undone)
    m = maps["maps/int_saxs"]
    assert m.dims == ("y", "x") and m.data.shape == (ny, nx)
    assert m.coords["x"].tolist() == xs.tolist() and m.coords["y"].tolist() == ys.tolist()
    assert maps["maps/n_frames"].data.tolist() == np.ones((ny, nx), int).tolist()
    assert maps["maps/unplaced"].data.tolist() == [0, 0, 0, 0, 0]
    assert m.attrs["sample"] == "scan" and m.attrs["sub_key"] == "int_saxs"

    # strength: the background-subtracted ring intensity is proportional to it (Poisson noise
    # of ~10^4 pixels per point: well below 1 %)
    ratio = m.data / truth["strength"]
    assert ratio.std() / ratio.mean() < 0.01
    q = np.linspace(1.03, 1.12, 901)
    ring = sim.truth.profile(q, with_background=False).mean()
    assert ratio.mean() == pytest.approx(ring, rel=0.03)

    # orientation (pyFAI chi, degrees mod 180) and anisotropy of the first ring
    a = truth["anisotropy"]
    d = np.mod(maps["maps/orientation"].data - truth["orientation"] + 90, 180) - 90
    assert np.abs(d).max() < 2.0 and np.abs(d[a > 0.3]).max() < 1.0
    assert np.abs(maps["maps/anisotropy"].data - a).max() < 0.02
    # Hermans' P2 of I ~ 1 + a cos 2(chi - orientation) is 4a / (15 - 5a)
    assert np.abs(maps["maps/hop"].data - 4 * a / (15 - 5 * a)).max() < 0.02

    # frame totals: the noise-free image sum within Poisson noise
    tids = attrs["attrs/total"].coords["train"]
    assert tids.tolist() == list(range(sim.first_train_id, sim.first_train_id + n))
    expected = np.array([sim.expected_image(int(t)).sum(dtype=np.float64) for t in tids])
    z = (attrs["attrs/total"].data - expected) / np.sqrt(expected)
    assert np.abs(z).max() < 5
    tot = np.full((ny, nx), np.nan)
    for t, value in zip(tids, attrs["attrs/total"].data, strict=True):
        tot[sim.train_truth(int(t))["point"]] = value
    assert np.array_equal(maps["maps/total"].data, tot)
    assert attrs["attrs/problems"].data.sum() == 0

    # per-train records: the attributes and the grid node of each train
    records, _, _ = runner.hub.records_since(0)
    assert len(records) == n
    r = records[5]
    tt = sim.train_truth(r["train_id"])
    assert (r["maps.x"], r["maps.y"]) == (tt["x"], tt["y"])
    assert r["attrs.int_saxs"] == m.data[tt["point"]]
