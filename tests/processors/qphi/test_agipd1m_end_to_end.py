"""config/agipd1m_qphi.toml against the AGIPD 1M simulator: q-phi over the unassembled modules."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.simulate.megapixel import MegapixelSimulator
from tests.simrun import run_on_split_simulator


@pytest.mark.timeout(240)
def test_agipd1m_qphi_pipeline(endpoint: str) -> None:
    sim = MegapixelSimulator("agipd1m", seed=1, frames=8, xgm_jitter=0.0, trains_per_step=2)
    runner = run_on_split_simulator(sim, "agipd1m_qphi.toml", endpoint, 2, 0, rate=5.0)
    status = runner.status_dict()
    assert status["processed"] == 2 and status["rejected"] == {}, status
    res = runner.hub.latest().results
    iq = res["qphi"]["I_q"]
    assert iq.data.shape == (1, 4, 256) and iq.dims == ("scan", "slot", "q")
    # bright slots: positive intensity over most of q; every accepted frame's pixels counted
    bright = iq.data[0, 0]
    assert np.isfinite(bright).mean() > 0.9 and np.nanmin(bright) > 0
    st = runner.states["qphi"]
    assert st["n_frames"][0].tolist() == [4, 4, 4, 4]  # 2 trains x 2 frames per slot
    mean = res["binned"]["mean"].data
    assert mean.shape == (1, 4, 16, 512, 128)
    mt = sim.truth.modules[9]
    expected = mt.expected_mean(sim.truth.delays[0], "unpumped")
    assert abs(np.mean(mean[0, 2, 9] - expected)) < 0.1
