"""`AttributeExtractor`: built-ins and user functions in a pipeline after q-phi; bad functions."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.config import ConfigError, parse_config
from beamstream.processors.base import TrainView
from beamstream.processors.maps import AttributeExtractor
from beamstream.processors.maps.extract import PROBLEMS
from beamstream.processors.pipeline import Pipeline
from beamstream.streamer.train import Train

DET, KEY = "DET", "data"
USER = "tests.processors.maps.userattrs"

# a 64 x 64 detector, 1 mm pixels at 1 m, 1 A: q up to ~2.8 1/nm
CONFIG = """
version = 1
[source]
endpoint = "tcp://127.0.0.1:4545"
detector = "DET"
key = "data"
layout = ["frame", "y", "x"]
frame_shape = [64, 64]

[[processors]]
type = "qphi"
name = "qphi"
npt_q = 24
npt_phi = 8
q_range = [0.1, 2.5]
per_frame = "iqphi"
error_model = "none"
[processors.geometry]
dist = 1.0
poni1 = 0.0325
poni2 = 0.0325
pixel1 = 1e-3
pixel2 = 1e-3
energy = 12.398419843320026
shape = [64, 64]

[[processors]]
type = "beamstream.processors.maps:AttributeExtractor"
name = "attrs"
[processors.axes]
q_1d = [0.1, 2.5, 24]
q = [0.1, 2.5, 24]
phi = [-180.0, 180.0, 8]
[processors.attributes.mean_i]
function = "roi"
[processors.attributes.peak]
function = "tests.processors.maps.userattrs:peak_q"
input = "iq"
q_range = [0.1, 2.5]
[processors.attributes.bright]
function = "tests.processors.maps.userattrs:fails_on_bright"
input = "frame"
limit = 50.0
[processors.attributes.vector]
function = "tests.processors.maps.userattrs:profile"
input = "iq"
[processors.attributes.i0]
function = "monitor"
source = "MON"
key = "i0"

[[processors]]
type = "beamstream.processors.maps:ScanMap"
name = "maps"
shape = [2, 2]
first_train_id = 1
"""


def frames_of(tid, n=2):
    yy, xx = np.mgrid[0:64, 0:64]
    r = np.hypot(yy - 32, xx - 32)
    base = 10.0 + 20.0 * np.exp(-0.5 * ((r - 15) / 2.0) ** 2)  # a ring at r = 15 px
    out = np.stack([base * (1 + 0.1 * tid) + 30.0 * f for f in range(n)]).astype(np.float32)
    return out


def train(tid, n=2, monitor=True):
    data = {DET: {KEY: frames_of(tid, n)}}
    if monitor:
        data["MON"] = {"i0": np.array([100.0 + tid, 200.0 + tid])[:n]}
    return Train(tid, None, data)


def test_attributes_in_pipeline_after_qphi():
    p = Pipeline(parse_config(CONFIG))
    assert [a.name for a in p.accumulators] == ["qphi", "attrs", "maps"]  # config order
    states = p.empty_states()
    views = [p.process(train(t), states) for t in range(1, 5)]
    v = views[0]
    attrs = v.products["attrs"]
    assert list(attrs) == ["mean_i", "peak", "bright", "vector", "i0"]
    iq = v.products["qphi.iq"]
    assert np.allclose(attrs["mean_i"], np.nanmean(iq, axis=1), rtol=1e-12)
    # the user function sees I(q) and the q centres: the ring at r = 15 mm, 1 m, 1 A
    q_ring = 4 * np.pi * np.sin(0.5 * np.arctan(15e-3 / 1.0)) / 1e-10 * 1e-9
    assert np.all(np.abs(attrs["peak"] - q_ring) <= 0.1)
    # frame 0 max = 30 * (1.1): fine; frame 1 max = 60: raises, counted, NaN; the run goes on
    assert np.isfinite(attrs["bright"][0]) and np.isnan(attrs["bright"][1])
    assert np.isnan(attrs["vector"]).all()
    assert attrs["i0"].tolist() == [101.0, 201.0]
    assert v.records["attrs.i0"] == 151.0
    res = p.finalize(states)
    probs = res["attrs"]["attrs/problems"]
    assert list(probs.coords["kind"]) == list(PROBLEMS)
    table = {
        a: dict(zip(PROBLEMS, row, strict=True))
        for a, row in zip(probs.coords["attribute"], probs.data.tolist(), strict=True)
    }
    assert table["bright"] == {"errors": 4, "non_scalar": 0, "missing_input": 0}
    assert table["vector"] == {"errors": 0, "non_scalar": 8, "missing_input": 0}
    assert table["mean_i"] == table["i0"] == {"errors": 0, "non_scalar": 0, "missing_input": 0}
    # per-train means, over train IDs
    i0 = res["attrs"]["attrs/i0"]
    assert i0.coords["train"].tolist() == [1, 2, 3, 4]
    assert i0.data.tolist() == [151.0, 152.0, 153.0, 154.0]
    assert i0.attrs["sample"] == "overall" and i0.attrs["sub_key"] == "i0"
    # the map (point-index mode, snake): train 3 is cell (1, 1), train 4 cell (1, 0)
    m = res["maps"]["maps/i0"]
    assert m.data.tolist() == [[151.0, 152.0], [154.0, 153.0]]
    assert np.isnan(res["maps"]["maps/vector"].data).all()


def test_extractor_before_qphi_is_refused_naming_both():
    # accumulators run in config order: an extractor listed before qphi would see no products
    text = CONFIG.replace('[[processors]]\ntype = "qphi"', '[[processors]]\ntype = "qphi-later"')
    head, qphi_block, rest = text.partition('[[processors]]\ntype = "qphi-later"')
    qphi_table, _, others = rest.partition('[[processors]]\ntype = "beamstream.processors.maps:A')
    text = (
        head
        + '[[processors]]\ntype = "beamstream.processors.maps:A'
        + others.split("[[processors]]")[0]
    )
    text += '[[processors]]\ntype = "qphi"' + qphi_table
    with pytest.raises(ConfigError) as e:
        Pipeline(parse_config(text))
    msg = str(e.value)
    assert "'attrs' requires 'qphi.iq'" in msg and "'qphi' provides it but comes after" in msg


def test_extractor_without_qphi_is_refused_naming_both():
    text = CONFIG.replace('[[processors]]\ntype = "qphi"', '[[processors]]\ntype = "qphi-gone"')
    head, _, rest = text.partition('[[processors]]\ntype = "qphi-gone"')
    _, _, others = rest.partition('[[processors]]\ntype = "beamstream.processors.maps:A')
    text = head + '[[processors]]\ntype = "beamstream.processors.maps:A' + others
    with pytest.raises(ConfigError, match="'attrs' requires 'qphi.iq'; no processor provides it"):
        Pipeline(parse_config(text))


def test_missing_monitor_counts_as_error_per_frame():
    p = Pipeline(parse_config(CONFIG))
    states = p.empty_states()
    v = p.process(train(1, monitor=False), states)
    assert np.isnan(v.products["attrs"]["i0"]).all()
    probs = p.finalize(states)["attrs"]["attrs/problems"]
    assert probs.data[list(probs.coords["attribute"]).index("i0")].tolist() == [2, 0, 0]


def test_bad_function_config_is_located():
    bad = CONFIG.replace(f"{USER}:peak_q", f"{USER}:no_such")
    with pytest.raises(ConfigError, match=r"processors\[1\].*attributes.peak.function"):
        Pipeline(parse_config(bad))
    bad = CONFIG.replace("limit = 50.0", "limit = 50.0\nbogus = 1")
    with pytest.raises(ConfigError, match="attributes.bright.bogus"):
        Pipeline(parse_config(bad))


def test_merge_laws_and_overall_mode():
    acc = AttributeExtractor(
        attributes={"s": {"function": f"{USER}:scaled_max", "input": "iq", "scale": 2.0}},
        keep_trains=False,
    )

    def view(tid, values):
        v = TrainView(Train(tid, None, {}))
        v.products["qphi.iq"] = np.asarray(values, dtype=np.float64)[:, None]
        return v

    views = [view(t, [t, t + 1.0]) for t in range(6)]
    parts = [acc.empty() for _ in range(3)]
    whole = acc.empty()
    for i, v in enumerate(views):
        acc.update(parts[i % 3], v)
        acc.update(whole, v)
    a, b, c = parts
    assert acc.merge(a, b).equals(acc.merge(b, a))
    assert acc.merge(acc.merge(a, b), c).equals(acc.merge(a, acc.merge(b, c)))
    assert acc.merge(acc.merge(a, b), c).equals(whole)
    res = acc.finalize(whole)["attrs/s"]
    assert res.dims == () and float(res.data) == pytest.approx(
        2 * np.mean([[t, t + 1] for t in range(6)])
    )
