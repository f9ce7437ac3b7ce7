"""The accumulated, curvature-corrected hit map, and the warning for transposed (energy along x)
data."""

from __future__ import annotations

import logging

import numpy as np

from beamstream.config import load_config
from beamstream.processors.pipeline import Pipeline
from beamstream.processors.rixs.hitmap import LAYOUT_HINT, line_direction
from beamstream.simulate import RixsSimulator
from beamstream.streamer.train import Train
from tests.simrun import CONFIG_DIR


def _run(trains: int, transpose: bool) -> dict:
    pipeline = Pipeline(load_config(CONFIG_DIR / "rixs_centroid.toml"))
    sim = RixsSimulator(seed=3, photons=1000)
    states = pipeline.empty_states()
    for t in sim.trains(trains):
        if transpose:  # energy along x, as some toolkits keep it; the config still says y
            src = sim.source
            data = {k: dict(v) for k, v in t.data.items()}
            data[src][sim.image_key] = np.ascontiguousarray(
                data[src][sim.image_key].transpose(0, 2, 1)
            )
            t = Train(t.train_id, t.timestamp, data, t.meta, {})
        pipeline.process(t, states)
    return pipeline.finalize(states)["rixs"]


def test_hit_map_has_the_lines_at_their_energies():
    results = _run(3, transpose=False)
    hit_map = results["hit_map"]
    assert hit_map.dims == ("scan", "slot", "energy", "x")
    assert hit_map.coord_units == {"energy": "eV", "x": "pixel"}
    counts = hit_map.data[0, 0]
    # every in-range hit of the spectrum is on the map (the map bins group the spectrum's)
    assert (
        counts.sum()
        == results["spectrum_single"].data.sum() + results["spectrum_double"].data.sum()
    )
    # the strongest row of the map is at the strongest line of the spectrum (930 eV region)
    e_map = hit_map.coords["energy"][np.argmax(counts.sum(axis=1))]
    spectrum = results["spectrum"]
    e_line = spectrum.coords["energy"][np.argmax(spectrum.data[0, 0])]
    assert abs(e_map - e_line) < 2 * np.diff(hit_map.coords["energy"][:2])[0]
    assert line_direction(hit_map.data) == "y"
    assert "layout_warning" not in hit_map.attrs


def test_transposed_data_gets_a_layout_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="beamstream.processors.rixs.centroider"):
        results = _run(3, transpose=True)
    hit_map = results["hit_map"]
    assert line_direction(hit_map.data) == "x"
    assert hit_map.attrs["layout_warning"] == LAYOUT_HINT
    warnings = [r.getMessage() for r in caplog.records if "energy axis" in r.getMessage()]
    assert len(warnings) == 1 and "source.layout" in warnings[0]


def test_line_direction_needs_enough_hits():
    assert line_direction(np.zeros((1, 1, 50, 50))) is None
    m = np.zeros((50, 50))
    m[20, :] = 100  # a line of constant energy
    m += 1
    assert line_direction(m) == "y"
    assert line_direction(m.T) == "x"
