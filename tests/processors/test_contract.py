"""The accumulator contract, over every registered accumulator, on simulated detector data.

For each: one piece of trains equals k pieces merged (bit-exact for integer fields; float sums to
the last bits), merging is associative, the empty state is neutral, merging leaves its inputs as
they were, and the plain-dict round trip is exact.
"""

from __future__ import annotations

from functools import cache, reduce

import numpy as np
import pytest

from beamstream.config import load_config, parse_config
from beamstream.processors.base import Accumulator, State
from beamstream.processors.pipeline import Pipeline
from beamstream.processors.registry import PROCESSORS
from beamstream.simulate import DsscSimulator, RixsSimulator, SaxsSimulator
from tests.simrun import CONFIG_DIR

ENERGY_INTEGRATOR = """
[[processors]]
type = "energy_integrator"
name = "integ"
curvature = [0.024, -3.7e-7]
energy_calibration = [903.61, 0.018408203125]
"""

#: config file (+ extra tables) -> simulator; together they cover every registered accumulator
CASES = {
    "dssc_pump_probe.toml": lambda: DsscSimulator(seed=5, frames=20, trains_per_step=2),
    "saxs_qphi.toml": lambda: SaxsSimulator(seed=2, frames=2),
    "scan_map.toml": lambda: SaxsSimulator(seed=4, scan=(2, 3)),
    "rixs_centroid.toml": lambda: RixsSimulator(seed=4, frames=2, photons=500),
}
EXTRA = {"rixs_centroid.toml": ENERGY_INTEGRATOR}
N_TRAINS, PIECES = 6, 3


@cache
def case(name: str) -> tuple[Pipeline, list]:
    cfg = load_config(CONFIG_DIR / name)
    if name in EXTRA:
        cfg = parse_config(cfg.text + EXTRA[name], str(CONFIG_DIR / name))
    return Pipeline(cfg), list(CASES[name]().trains(N_TRAINS))


def accumulate(pipeline: Pipeline, trains: list) -> dict:
    states = pipeline.empty_states()
    for t in trains:
        pipeline.process(t, states)
    return states


def assert_same(a: State, b: State) -> None:
    """Equal keys and fields: integer fields bitwise, float fields to the last bits."""
    da, db = a.to_dict(), b.to_dict()
    np.testing.assert_array_equal(da["keys"], db["keys"])
    assert da["arrays"].keys() == db["arrays"].keys()
    for field, x in da["arrays"].items():
        y = db["arrays"][field]
        assert x.dtype == y.dtype and x.shape == y.shape, field
        if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
            np.testing.assert_array_equal(x, y, err_msg=field)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=0, equal_nan=True, err_msg=field)


def assert_exact(a: State, b: State) -> None:
    """Bitwise equal keys, fields and meta."""
    da, db = a.to_dict(), b.to_dict()
    np.testing.assert_array_equal(da["keys"], db["keys"])
    assert da["arrays"].keys() == db["arrays"].keys() and da["meta"] == db["meta"]
    for field, x in da["arrays"].items():
        assert x.dtype == db["arrays"][field].dtype, field
        np.testing.assert_array_equal(x, db["arrays"][field], err_msg=field)


def test_every_registered_accumulator_is_covered():
    covered = {type(a) for name in CASES for a in case(name)[0].accumulators}
    registered = {c for c in PROCESSORS.load_all().values() if issubclass(c, Accumulator)}
    assert registered <= covered, registered - covered


@pytest.mark.parametrize("config", list(CASES))
def test_merge_laws(config: str) -> None:
    pipeline, trains = case(config)
    assert pipeline.accumulators
    wholes = accumulate(pipeline, trains)
    size = -(-len(trains) // PIECES)
    pieces = [accumulate(pipeline, trains[i : i + size]) for i in range(0, len(trains), size)]
    assert len(pieces) == PIECES
    for acc in pipeline.accumulators:
        check_laws(acc, wholes[acc.name], [p[acc.name] for p in pieces])


def check_laws(acc: Accumulator, whole: State, pieces: list[State]) -> None:
    assert isinstance(whole, State), acc.name
    assert whole.to_dict()["arrays"], f"{acc.name}: the test data must reach the state"
    before = [p.copy() for p in pieces]
    assert_same(reduce(acc.merge, pieces), whole)
    for p, b in zip(pieces, before, strict=True):  # merging never modifies its inputs
        assert_exact(p, b)
    a, b, c = pieces
    assert_same(acc.merge(acc.merge(a, b), c), acc.merge(a, acc.merge(b, c)))
    empty = acc.empty()
    assert_exact(acc.merge(empty, whole), whole)
    assert_exact(acc.merge(whole, empty), whole)
    back = type(whole).from_dict(whole.to_dict())
    assert_exact(back, whole)
    whole.compatible(back)
