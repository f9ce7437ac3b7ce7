"""config/rixs_centroid.toml against the RIXS simulator over a real socket: line and curvature."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.rixs.curvature import fit_curvature_hits
from beamstream.simulate import RixsSimulator
from tests.simrun import run_on_simulator


@pytest.mark.timeout(180)
def test_line_position_and_curvature_recovered(endpoint):
    sim = RixsSimulator(seed=4, frames=2, photons=2000)
    n = 3
    runner = run_on_simulator(sim, "rixs_centroid.toml", endpoint, n)
    truth = sim.truth
    sent = sum(len(sim.train_truth(sim.first_train_id + k)["x"]) for k in range(n))

    # nearly every photon is found (border photons and close pairs aside)
    res = runner.hub.latest().results["rixs"]
    found = res["n_single"].data.sum() + 2 * res["n_double"].data.sum()
    assert 0.95 * sent <= found <= 1.02 * sent

    # the curvature fitted from the recorded hits is the simulated one
    records, _, _ = runner.hub.records_since(0)
    hits = [r["rixs.hits"] for r in records]
    x = np.concatenate([h["x"] for h in hits])
    y = np.concatenate([h["y"] for h in hits])
    near = np.abs(y - (truth.y0 + truth.a * x + truth.b * x**2)) < 8  # the elastic line
    fit = fit_curvature_hits(x[near], y[near])
    assert fit.a == pytest.approx(truth.a, rel=0.01)
    assert fit.b == pytest.approx(truth.b, rel=0.15)
    # the elastic line is 2.7 px wide (0.05 eV at 0.018 eV/px): with ~75 photons in each of 32
    # column blocks a block's centre is known to ~0.3 px, the extrapolated offset to ~0.1 px
    assert fit.offset == pytest.approx(truth.y0, abs=0.3)

    # with the configured curvature and calibration the elastic line is at the incident energy
    spectrum = res["spectrum"].data[0, 0]
    energy = res["spectrum"].coords["energy"]
    width = energy[1] - energy[0]
    assert abs(energy[np.argmax(spectrum)] - truth.incident_energy) <= 1.5 * width
    for line in truth.lines[:2]:  # the two sharp lines
        e = truth.incident_energy + line.loss
        window = np.abs(energy - e) < 3 * line.width + 2 * width
        assert spectrum[window].sum() > 0.5 * line.weight * found
