"""The fused binner + 1-D q-phi pass gives the states of the two accumulators run in turn."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.config import parse_config
from beamstream.processors.fused import FusedBinnerQ, plan_steps
from beamstream.processors.pipeline import Pipeline
from beamstream.streamer.train import Train

DET, XGM = "DET", "XGM"


def config(per_frame: str, error_model: str) -> str:
    return f"""
version = 1
[source]
detector = "{DET}"
layout = ["frame", "module", "ss", "fs"]
geometry = {{ detector = "AGIPD_1M" }}
[[processors]]
type = "frame_selector"
pattern = ["pumped", "unpumped", "dark"]
[[processors.rules]]
source = "{XGM}"
key = "i"
min = 10.0
[[processors]]
type = "scan_binner"
name = "binned"
[[processors]]
type = "qphi"
name = "q"
geometry = {{ extra_geom = "source", dist = 0.5, energy = 9.3 }}
npt_q = 97
outputs = ["iq"]
per_frame = "{per_frame}"
error_model = "{error_model}"
"""


def trains(n: int, nf: int = 11) -> list[Train]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        data = rng.gamma(2.0, 10.0, (nf, 16, 512, 128)).astype(np.float32)
        data[i % nf, 3, 10:20, 5] = np.nan  # dynamic mask: NaN ...
        data[(i + 1) % nf, 7, 100, 0:3] = np.inf  # ... and inf (summed by the binner only)
        xgm = np.full(nf, 50.0, np.float32)
        xgm[i % 3] = 1.0  # one frame rejected by the monitor rule
        out.append(Train(i, None, {DET: {"image.data": data}, XGM: {"i": xgm}}))
    return out


@pytest.mark.parametrize("per_frame, error_model", [("iq", "poisson"), ("none", "none")])
def test_fused_equals_separate(per_frame: str, error_model: str) -> None:
    cfg = parse_config(config(per_frame, error_model))
    fused, separate = Pipeline(cfg), Pipeline(cfg)
    assert isinstance(fused.steps[0], FusedBinnerQ)
    separate.steps = plan_steps(separate.accumulators, fuse=False)
    sf, ss = fused.empty_states(), separate.empty_states()
    for t in trains(3):
        vf = fused.process(t, sf)
        vs = separate.process(t, ss)
        if per_frame == "iq":
            np.testing.assert_allclose(vf.products["q.iq"], vs.products["q.iq"], rtol=1e-12)
    for k in ("sum", "pixel_count", "count", "trains"):
        np.testing.assert_array_equal(sf["binned"][k], ss["binned"][k])  # bit for bit
    for k in ss["q"].specs:
        np.testing.assert_allclose(sf["q"][k], ss["q"][k], rtol=1e-12, atol=1e-9, err_msg=k)
    assert np.isinf(sf["binned"]["sum"]).any()  # inf reached the binner's sums
    rf, rs = fused.finalize(sf)["q"]["I_q"].data, separate.finalize(ss)["q"]["I_q"].data
    np.testing.assert_allclose(rf, rs, rtol=1e-12)


def test_not_fused_when_it_does_not_fit() -> None:
    text = config("iq", "poisson").replace('outputs = ["iq"]', 'outputs = ["iqphi", "iq"]')
    text = text.replace('per_frame = "iq"', 'per_frame = "none"\nnpt_phi = 8')
    pipe = Pipeline(parse_config(text))
    assert not any(isinstance(s, FusedBinnerQ) for s in pipe.steps)


def test_integer_frames_go_through_separately() -> None:
    cfg = parse_config(config("none", "none"))
    pipe = Pipeline(cfg)
    st = pipe.empty_states()
    t = trains(1, nf=3)[0]
    t.data[DET]["image.data"] = np.ones((3, 16, 512, 128), np.uint16)
    pipe.process(t, st)
    assert st["binned"]["sum"].dtype == np.int64  # the integer kernel, exact
    assert st["binned"]["sum"].sum() == 2 * 16 * 512 * 128  # frame 0 failed the XGM rule
