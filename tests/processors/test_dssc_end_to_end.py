"""config/dssc_pump_probe.toml against the DSSC simulator over a real socket: the known signal."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.simulate import DsscSimulator
from tests.simrun import run_on_simulator


@pytest.mark.timeout(120)
def test_pump_probe_signal_recovered_per_delay(endpoint):
    delays = (-1.0, 0.0, 0.5, 2.0)
    sim = DsscSimulator(seed=5, frames=40, delays=delays, trains_per_step=2, xgm_jitter=0.0)
    n = 2 * len(delays)
    runner = run_on_simulator(sim, "dssc_pump_probe.toml", endpoint, n)
    results = runner.hub.latest().results["binned"]
    truth = sim.truth
    assert results["mean"].coords["scan"].tolist() == list(delays)
    assert list(results["mean"].coords["slot"]) == list(truth.pattern)
    # every slot's mean equals the noise-free expectation (40 frames x 2 trains per delay)
    mean = results["mean"].data
    roi = truth.roi_mask
    for i, d in enumerate(delays):
        for j, slot in enumerate(truth.pattern):
            expected = truth.expected_mean(d, slot)
            assert abs(mean[i, j][roi].mean() - expected[roi].mean()) < 0.05
            # residuals are the simulator's noise averaged over 20 frames (+ uint16 rounding)
            var = truth.read_noise**2 + truth.adu_per_photon * truth.signal_image(d, slot) + 1 / 12
            z = (mean[i, j] - expected) / np.sqrt(var / 20)
            assert abs(z.mean()) < 0.05 and 0.9 < z.std() < 1.1, (slot, z.mean(), z.std())
    # the pump-probe ratio in the ROI follows the simulated s(delay)
    dsub = results["mean_dark_subtracted"].data
    assert list(results["mean_dark_subtracted"].coords["slot"]) == ["pumped", "unpumped"]
    pumped, unpumped = 0, 1
    for i, d in enumerate(delays):
        e_p = truth.expected_mean(d, "pumped") - truth.expected_mean(d, "pumped_dark")
        e_u = truth.expected_mean(d, "unpumped") - truth.expected_mean(d, "unpumped_dark")
        ratio = dsub[i, pumped][roi].mean() / dsub[i, unpumped][roi].mean()
        assert ratio == pytest.approx(e_p[roi].mean() / e_u[roi].mean(), abs=0.003)
        assert ratio == pytest.approx(1 - truth.signal(d), abs=0.03)
    pp = results["pump_probe"].data
    assert pp.shape == (len(delays), 128, 512)
    # with dark_subtract, pumped minus unpumped is taken after each slot's own dark
    assert np.allclose(pp, dsub[:, pumped] - dsub[:, unpumped], rtol=1e-12, atol=1e-9)
