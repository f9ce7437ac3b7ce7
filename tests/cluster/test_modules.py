"""Module-parallel processing: workers over disjoint module groups merge to the whole pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.cluster.modules import (
    ModuleSplitError,
    config_for_modules,
    merge_over_modules,
    module_groups,
)
from beamstream.config import parse_config
from beamstream.processors.pipeline import Pipeline
from beamstream.simulate.megapixel import MegapixelSimulator

CONFIG = """
version = 1
[source]
detector = "SCS_DET_DSSC1M-1/DET/{module}CH0:xtdf"
modules = "0-5"
layout = ["frame", "ss", "fs"]
geometry = { detector = "DSSC_1M" }
[scan]
source = "SCS_ILH_LAS/MDL/OPTICALDELAY_PP800"
key = "actualPosition"
stepsize = 0.01
[[processors]]
type = "frame_selector"
pattern = ["pumped", "pumped_dark", "unpumped", "unpumped_dark"]
[[processors.rules]]
source = "SCS_BLU_XGM/XGM/DOOCS:output"
key = "data.intensityTD"
min = 1200.0
[[processors]]
type = "scan_binner"
name = "binned"
[[processors]]
type = "qphi"
name = "q"
geometry = { extra_geom = "source", dist = 0.3, energy = 3.0 }
npt_q = 64
q_range = [1.0, 9.0]
outputs = ["iq"]
per_frame = "iq"
"""


def run(config, trains) -> dict:
    pipe = Pipeline(config)
    states = pipe.empty_states()
    for t in trains:
        pipe.process(t, states)
    return states


@pytest.fixture(scope="module")
def trains():
    sim = MegapixelSimulator(
        "dssc1m", seed=4, frames=8, modules=6, delays=(0.0, 1.0), trains_per_step=2
    )
    return list(sim.trains(4))


def test_module_groups_merge_to_the_whole(trains) -> None:
    config = parse_config(CONFIG)
    whole = run(config, trains)
    groups = module_groups(config, 3)
    assert groups == [(0, 1), (2, 3), (4, 5)]
    parts = [(g, run(config_for_modules(config, g), trains)) for g in reversed(groups)]
    merged = merge_over_modules(Pipeline(config), parts)
    b, m = whole["binned"], merged["binned"]
    np.testing.assert_array_equal(m.keys, b.keys)
    for field in ("sum", "pixel_count", "count", "trains"):
        np.testing.assert_array_equal(m[field], b[field])  # bit for bit
    q, mq = whole["q"], merged["q"]
    np.testing.assert_array_equal(mq["n_frames"], q["n_frames"])
    np.testing.assert_array_equal(mq["count_1d"], q["count_1d"])
    np.testing.assert_array_equal(mq["sum_signal_1d"], q["sum_signal_1d"])  # integer counts
    np.testing.assert_allclose(mq["sum_norm_1d"], q["sum_norm_1d"], rtol=1e-12)
    res_whole = Pipeline(config).finalize(whole)
    res_merged = Pipeline(config).finalize(merged)
    np.testing.assert_array_equal(
        res_merged["binned"]["mean"].data, res_whole["binned"]["mean"].data
    )


def test_bad_splits_are_refused(trains) -> None:
    config = parse_config(CONFIG)
    groups = module_groups(config, 2)
    parts = [(g, run(config_for_modules(config, g), trains)) for g in groups]
    with pytest.raises(ModuleSplitError, match="do not cover"):
        merge_over_modules(Pipeline(config), parts[:1])
    other = [
        (groups[0], parts[0][1]),
        (groups[1], run(config_for_modules(config, groups[1]), trains[:2])),
    ]
    with pytest.raises(ModuleSplitError, match="differ"):
        merge_over_modules(Pipeline(config), other)
    no_range = parse_config(CONFIG.replace("q_range = [1.0, 9.0]\n", ""))
    parts = [(g, run(config_for_modules(no_range, g), trains[:1])) for g in groups]
    with pytest.raises(ModuleSplitError, match="set q_range explicitly"):
        merge_over_modules(Pipeline(no_range), parts)
    with pytest.raises(ModuleSplitError, match="module groups: expected 1 to 6"):
        module_groups(config, 7)
