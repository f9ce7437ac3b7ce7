"""config/dssc1m_pump_probe.toml against a 16-module DSSC simulation from five endpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beamstream.config import load_config
from beamstream.executors import LocalExecutor
from beamstream.replay.raw import RawReader
from beamstream.runner import Runner
from beamstream.simulate.megapixel import MegapixelSimulator
from beamstream.simulate.split import Delivery
from beamstream.sinks.recorder import RawRecorder
from tests.simrun import CONFIG_DIR, run_on_split_simulator


@pytest.mark.timeout(180)
def test_per_module_per_slot_means_recovered(endpoint: str, tmp_path: Path) -> None:
    delays = (-1.0, 0.5)
    sim = MegapixelSimulator(
        "dssc1m", seed=3, frames=16, delays=delays, trains_per_step=2, xgm_jitter=0.0
    )
    n = 2 * len(delays)
    delivery = Delivery(jitter_ms=30, out_of_order=0.3, missing=(5,))
    recorder = RawRecorder(str(tmp_path / "raw.h5"))
    runner = run_on_split_simulator(
        sim, "dssc1m_pump_probe.toml", endpoint, n, 4, delivery, recorders=[recorder]
    )
    status = runner.status_dict()
    assert status["processed"] == n, status
    # module 5 never came: counted for every train, its means are NaN (never zero)
    assert status["rejected"] == {"excluded module 5: missing": n}
    matcher = runner.executor.source.stats()["matcher"]
    assert matcher["complete"] == n
    assert all(c["received"] == n and c["matched"] == n for c in matcher["inputs"].values())
    res = runner.hub.latest().results["binned"]
    mean = res["mean"].data  # (scan, slot, module, y, x)
    assert mean.shape == (len(delays), 4, 16, 128, 512)
    assert res["mean"].coords["scan"].tolist() == list(delays)
    truth = sim.truth
    frames_per_bin = 2 * 16 // len(truth.pattern)  # 2 trains x 4 frames of each slot
    for m in range(16):
        if m == 5:
            assert np.isnan(mean[:, :, m]).all()
            continue
        mt = truth.modules[m]
        for i, d in enumerate(delays):
            for j, slot in enumerate(truth.pattern):
                expected = mt.expected_mean(d, slot)
                var = mt.read_noise**2 + mt.adu_per_photon * mt.signal_image(d, slot) + 1 / 12
                z = (mean[i, j, m] - expected) / np.sqrt(var / frames_per_bin)
                assert abs(z.mean()) < 0.05 and 0.9 < z.std() < 1.1, (m, slot, z.mean(), z.std())
    # pump-probe in every module's ROI follows s(delay)
    dsub = res["mean_dark_subtracted"].data
    for m in (0, 15):
        roi = truth.modules[m].roi_mask
        for i, d in enumerate(delays):
            ratio = dsub[i, 0, m][roi].mean() / dsub[i, 1, m][roi].mean()
            assert ratio == pytest.approx(1 - truth.signal(d), abs=0.03)
    # the recorder kept every source of the matched trains: replayed, the same sums
    assert recorder.recorded == n and recorder.errors == 0
    config = load_config(CONFIG_DIR / "dssc1m_pump_probe.toml")
    offline = Runner(config, LocalExecutor(RawReader(tmp_path / "raw.h5")), status_out=None)
    offline.run()
    for k in ("sum", "pixel_count", "count", "trains"):
        np.testing.assert_array_equal(offline.states["binned"][k], runner.states["binned"][k])
