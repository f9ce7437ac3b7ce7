"""config/saxs_qphi.toml against the SAXS simulator over a real socket: the simulated rings."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.simulate import SaxsSimulator
from tests.simrun import run_on_simulator


def peak_position(q: np.ndarray, i: np.ndarray, q0: float, half_width: float) -> float:
    """Centroid of the background-subtracted peak within ``q0 +- half_width``."""
    sel = (q > q0 - half_width) & (q < q0 + half_width) & np.isfinite(i)
    qs, ys = q[sel], i[sel]
    base = np.linspace(ys[0], ys[-1], len(ys))  # linear background under the ring
    w = np.clip(ys - base, 0, None)
    return float((qs * w).sum() / w.sum())


@pytest.mark.timeout(180)
def test_ring_positions_recovered(endpoint):
    sim = SaxsSimulator(seed=2, frames=2)
    n = 3
    runner = run_on_simulator(sim, "saxs_qphi.toml", endpoint, n)
    res = runner.hub.latest().results["qphi"]
    iq = res["I_q"]
    q = iq.coords["q"]
    assert iq.data.shape == (1, 1, 1000)
    profile = iq.data[0, 0]
    bin_width = q[1] - q[0]
    for ring in sim.truth.rings:
        if not q[0] + 0.1 < ring.q < q[-1] - 0.1:
            continue
        found = peak_position(q, profile, ring.q, 4 * ring.width + 2 * bin_width)
        assert found == pytest.approx(ring.q, abs=0.2 * bin_width), ring
    # the cake has the same rings: its azimuthal mean peaks at the strongest ring
    cake = res["I_qphi"].data[0, 0]
    qc = res["I_qphi"].coords["q"]
    strongest = max(sim.truth.rings, key=lambda r: r.amplitude)
    covered = np.isfinite(cake).any(axis=0)
    azimuthal = np.nanmean(cake[:, covered], axis=0)
    assert abs(qc[covered][np.argmax(azimuthal)] - strongest.q) <= qc[1] - qc[0]
    # per-frame I(q) went into the per-train records
    records, _, _ = runner.hub.records_since(0)
    assert len(records) == n
    per_frame = records[0]["qphi.iq"]
    assert per_frame.shape == (2, 1000)
    assert np.nanargmax(per_frame[0]) == np.nanargmax(profile)
