"""Synthetic trains and a pipeline config shared by the sink and replay tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from beamstream.streamer.train import Train

DET = "TEST_DET/DET/0CH0:xtdf"
MOTOR = "TEST_MOTOR/MOTOR/X"
FIRST = 10_000

CONFIG = f"""
version = 1

[source]
endpoint = "tcp://127.0.0.1:4545"
socket = "PULL"
detector = "{DET}"
key = "image.data"
layout = ["frame", "y", "x"]

[scan]
source = "{MOTOR}"
key = "actualPosition"
stepsize = 1.0

[[processors]]
type = "scan_binner"
name = "mean"

[[processors]]
type = "tests.processors.userplugin:FrameTotals"
name = "totals"

[run]
interval = 0.1
"""


def make_train(tid: int, frames: int = 4, shape: tuple[int, int] = (16, 12)) -> Train:
    """A deterministic train: uint16 frames (exact sums), a motor value, plain values, metadata."""
    rng = np.random.default_rng(tid)
    img = rng.integers(0, 1000, (frames, *shape), dtype=np.uint16)
    ts = 1.7e9 + (tid - FIRST) * 0.1
    data = {
        DET: {
            "image.data": img,
            "image.pulseId": np.arange(frames, dtype=np.uint64),
            "header.pulseCount": frames,
            "image.passport": ["a", "b"],
        },
        MOTOR: {"actualPosition.value": float(tid % 3), "state": "ON", "enabled": True},
    }
    meta = {}
    for src in data:
        sec, frac = divmod(ts, 1)
        meta[src] = {
            "source": src,
            "timestamp": ts,
            "timestamp.sec": str(int(sec)),
            "timestamp.frac": f"{round(frac * 1e9) * 10**9:018d}",
            "timestamp.tid": tid,
        }
    dims = {DET: {"image.data": ("pulse", "ss", "fs")}}
    return Train(tid, ts, data, meta, dims)


def make_trains(n: int, start: int = FIRST, **kw: object) -> Iterator[Train]:
    for tid in range(start, start + n):
        yield make_train(tid, **kw)


def assert_same_train(a: Train, b: Train) -> None:
    """Same id, timestamp, sources, keys, values (arrays: dtype, shape, content), meta, dims."""
    assert a.train_id == b.train_id
    assert a.timestamp == b.timestamp
    assert sorted(a.data) == sorted(b.data)
    for src in a.data:
        assert sorted(a.data[src]) == sorted(b.data[src]), src
        for k, v in a.data[src].items():
            w = b.data[src][k]
            if isinstance(v, np.ndarray):
                assert isinstance(w, np.ndarray) and v.dtype == w.dtype and v.shape == w.shape
                np.testing.assert_array_equal(v, w)
            else:
                assert v == w and type(v) is type(w), (src, k, v, w)
    assert a.meta == b.meta
    assert {s: {k: tuple(d) for k, d in m.items()} for s, m in a.dims.items() if m} == {
        s: {k: tuple(d) for k, d in m.items()} for s, m in b.dims.items() if m
    }
