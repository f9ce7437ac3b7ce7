"""Kernels compiled before the first train: the synthetic train, the compile note, no compile left
for the first real train."""

from __future__ import annotations

import io

import numpy as np
from numba import njit

from beamstream.config import load_config, parse_config
from beamstream.processors.pipeline import Pipeline
from beamstream.simulate import DsscSimulator
from beamstream.warmup import synthetic_train, warm_up, watch_compiles
from tests.simrun import CONFIG_DIR


def test_synthetic_train_follows_the_declared_layout():
    config = parse_config(
        'version = 1\n[source]\ndetector = "D"\nkey = "k"\nlayout = ["frame", "fs", "ss"]\n'
        'frame_shape = [30, 40]\ndtype = "uint16"\n'
    )
    arr = synthetic_train(config).get("D", "k")
    # (frame, fs, ss) in the message: frame_shape is (y, x) = (ss, fs) after the layout
    assert arr.shape == (2, 40, 30) and arr.dtype == np.uint16 and not arr.flags.writeable


def test_compile_note_is_printed_once():
    @njit(cache=False)
    def fresh(a):  # pragma: no cover - numba
        return a.sum() + 1

    out = io.StringIO()
    with watch_compiles(out) as counter:
        fresh(np.ones(3))
        fresh(np.ones(3, np.float32))
    assert counter.count >= 2  # and the numpy functions they use, compiled with them
    assert out.getvalue() == "compiling kernels (first run only) ...\n"


def test_after_the_warm_up_the_first_train_compiles_nothing():
    config = load_config(CONFIG_DIR / "dssc_pump_probe.toml")
    pipeline = Pipeline(config)
    warm_up(pipeline, config, out=None)
    train = DsscSimulator(seed=1, frames=8).train(10000000000)
    for values in train.data.values():  # as received: read-only views on the message
        for v in values.values():
            if isinstance(v, np.ndarray):
                v.setflags(write=False)
    states = pipeline.empty_states()
    with watch_compiles(None) as counter:
        pipeline.process(train, states)
    assert counter.count == 0
    assert pipeline.finalize(states)["binned"]["counts"].data.sum() > 0
