"""Defect 9: big-endian arrays are converted to native byte order at decode (they used to pass
the decoder, then fail in every train's numba kernel)."""

from __future__ import annotations

import msgpack
import numpy as np

from beamstream.config import parse_config
from beamstream.processors.pipeline import Pipeline
from beamstream.streamer.protocol import decode_train
from beamstream.streamer.train import Train
from tests.replay.synth import CONFIG, DET, make_train


def _frames_with_dtype(train: Train, dtype: str) -> list[bytes]:
    """A 2.2 message whose image array is sent with an explicit byte order."""
    img = train.data[DET]["image.data"].astype(dtype)
    frames = []
    for src, values in train.data.items():
        plain = {k: v for k, v in values.items() if not isinstance(v, np.ndarray)}
        meta = {**train.meta[src], "timestamp.tid": train.train_id}
        frames += [
            msgpack.packb({"source": src, "content": "msgpack", "metadata": meta}),
            msgpack.packb(plain, default=lambda o: o.tolist()),
        ]
        if src == DET:
            head = {"source": src, "content": "array", "path": "image.data"}
            head.update(dtype=img.dtype.str, shape=list(img.shape))
            frames += [msgpack.packb(head), img.tobytes()]
    return frames


def test_big_endian_arrays_are_native_after_decoding() -> None:
    train = make_train(10_000)
    big = decode_train(_frames_with_dtype(train, ">u2"))
    little = decode_train(_frames_with_dtype(train, "<u2"))
    arr = big.data[DET]["image.data"]
    assert arr.dtype.isnative and arr.dtype == np.dtype("uint16")
    np.testing.assert_array_equal(arr, train.data[DET]["image.data"])
    assert not arr.flags.writeable
    # the native one stays a zero-copy view of the received frame
    assert little.data[DET]["image.data"].base is not None
    pipe = Pipeline(parse_config(CONFIG, "t.toml"))
    s_big, s_little = pipe.empty_states(), pipe.empty_states()
    pipe.process(big, s_big)
    pipe.process(little, s_little)
    for name in s_big:
        assert s_big[name].equals(s_little[name])
