"""Geometry from the stream equals the same geometry given as a PONI file; overrides."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.config import ConfigError, parse_config
from beamstream.dectris.geometry import needs_stream_geometry, resolve_config, stream_geometry
from beamstream.dectris.simulate import EigerSimulator
from beamstream.executors import LocalExecutor
from beamstream.runner import Runner
from beamstream.simulate import write_poni
from beamstream.streamer.train import Train

from .helpers import parse_start

QPHI = """
version = 1
[source]
detector = "eiger"
key = "image.threshold_1"
layout = ["frame", "y", "x"]
[[processors]]
type = "qphi"
npt_q = 60
npt_phi = 12
q_range = [0.3, 1.8]
polarization_factor = 0.99
"""


@pytest.fixture(scope="module")
def sim():
    return EigerSimulator(seed=2, shape=(256, 320))


def _run(config, frames):
    trains = [
        Train(k + 1, None, {"eiger": {"image.threshold_1": f[None]}}) for k, f in enumerate(frames)
    ]
    r = Runner(config, LocalExecutor(trains), status_out=None)
    r.run()
    return r.hub.latest().results["qphi"]


def test_stream_geometry_equals_poni_file(sim, tmp_path):
    import pyFAI

    start = parse_start(sim)
    found = stream_geometry(start)
    poni = tmp_path / "eiger.poni"
    write_poni(poni, sim.geometry)
    ai = pyFAI.load(str(poni))
    g = found["geometry"]
    assert (g["dist"], g["poni1"], g["poni2"]) == pytest.approx((ai.dist, ai.poni1, ai.poni2))
    assert g["wavelength"] == pytest.approx(ai.wavelength, rel=1e-12)
    assert (g["rot1"], g["rot2"], g["rot3"]) == (ai.rot1, ai.rot2, ai.rot3) == (0, 0, 0)
    np.testing.assert_array_equal(found["mask"], sim.mask)
    assert found["flat"] is None  # the simulator's flatfield is flagged as applied

    frames = [sim.frames(k)["threshold_1"] for k in range(2)]
    stream_cfg, applied = resolve_config(parse_config(QPHI + 'geometry = "from-stream"\n'), start)
    mask_path = tmp_path / "mask.npy"
    np.save(mask_path, sim.mask)
    poni_cfg = parse_config(QPHI + f'poni = "{poni}"\nmask = "{mask_path}"\n')
    a, b = _run(stream_cfg, frames), _run(poni_cfg, frames)
    assert set(a) == set(b) and {"I_q", "I_qphi", "count_q"} <= set(a)
    for name in a:
        np.testing.assert_allclose(a[name].data, b[name].data, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(a["count_q"].data, b["count_q"].data)
    assert np.isfinite(a["I_q"].data).sum() > 40
    assert applied["qphi"]["origin"]["poni1"] == "stream"


def test_config_overrides_and_flatfield(sim):
    start = parse_start(sim)
    start.header["flatfield_enabled"] = False
    start.flatfield = {"threshold_1": np.full(sim.geometry.shape, 2.0, np.float32)}
    text = QPHI + '[processors.geometry]\nfrom = "stream"\ndist = 1.5\nenergy = 10.0\n'
    cfg = parse_config(text)
    assert needs_stream_geometry(cfg)
    resolved, applied = resolve_config(cfg, start)
    params = resolved.processors[0].params
    assert params["geometry"]["dist"] == 1.5 and params["geometry"]["energy"] == 10.0
    assert "wavelength" not in params["geometry"]
    assert applied["qphi"]["origin"]["dist"] == "config"
    assert applied["qphi"]["origin"]["poni2"] == "stream"
    np.testing.assert_array_equal(params["flat"], 0.5)  # DECTRIS flatfields multiply counts


def test_missing_geometry_is_a_located_error(sim):
    start = parse_start(sim)
    del start.header["beam_center_x"]
    with pytest.raises(ConfigError, match=r"processors\[0\].geometry: .*lacks beam_center_x"):
        resolve_config(parse_config(QPHI + 'geometry = "from-stream"\n'), start)
