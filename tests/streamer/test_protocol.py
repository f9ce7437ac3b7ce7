"""Protocol round trips: numeric dtypes and shapes, plain values, the dims extension,
zero-copy encoding and decoding, ``Train`` accessors and the basic decode error."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
import zmq
from karabo_bridge import serializer as kb_serializer

from beamstream.streamer import MalformedMessage, MissingData, Train, decode_train, encode_train
from tests.streamer._protocol_helpers import (
    NUMERIC_DTYPES,
    PLAIN,
    _assert_same_array,
    _sample,
)


def _zmq_roundtrip(frames: list) -> list[zmq.Frame]:
    """Send frames over an ipc-free inproc PAIR and receive them as zmq.Frame objects."""
    ctx = zmq.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    addr = f"inproc://proto-{id(frames)}"
    try:
        a.bind(addr)
        b.connect(addr)
        a.send_multipart(frames, copy=True)
        assert b.poll(5000), "message did not arrive"
        return b.recv_multipart(copy=False)
    finally:
        a.close(linger=0)
        b.close(linger=0)


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (7,), (2, 3, 5)], ids=str)
def test_roundtrip_numeric_dtypes_and_shapes(dtype: str, shape: tuple[int, ...]) -> None:
    arr = _sample(dtype, shape)
    train = Train(10_000_000_001, 1_700_000_000.25, {"SRC/A": {"x": arr, "n": 1}})
    out = decode_train(encode_train(train))
    assert out.train_id == 10_000_000_001
    assert out.timestamp == 1_700_000_000.25
    _assert_same_array(out.data["SRC/A"]["x"], arr)
    assert out.data["SRC/A"]["n"] == 1


@pytest.mark.timeout(20)
def test_roundtrip_large_array_and_many_sources() -> None:
    big = _sample("uint16", (32, 512, 1024), seed=1)  # 32 MiB
    sources = {
        f"DET/MOD{i:02d}": {"image.data": _sample("float32", (4, 16, 32), seed=i)}
        for i in range(16)
    }
    sources["BIG"] = {"image.data": big}
    train = Train(42, None, sources)
    frames = encode_train(train)
    assert len(frames) == 2 * 2 * 17  # per source: (header, values) + (array header, buffer)
    out = decode_train(frames)
    assert out.nbytes == sum(len(memoryview(f).cast("B")) for f in frames)
    assert out.nbytes > big.nbytes
    assert sorted(out.data) == sorted(sources)
    for src, values in sources.items():
        _assert_same_array(out.data[src]["image.data"], values["image.data"])


@pytest.mark.timeout(10)
def test_roundtrip_nested_plain_values_and_numpy_scalars() -> None:
    values = dict(PLAIN)
    values |= {
        "np_f32": np.float32(1.5),
        "np_i64": np.int64(-7),
        "np_u8": np.uint8(200),
        "np_bool": np.bool_(True),
        "np_in_list": [np.int16(3), np.float64(0.5)],
        "tuple": (1, 2),
    }
    train = Train(5, None, {"MOTOR/X": values})
    out = decode_train(encode_train(train))
    got = out.data["MOTOR/X"]
    for key, want in PLAIN.items():
        assert got[key] == want, key
        assert type(got[key]) is type(want), key
    assert got["np_f32"] == 1.5 and type(got["np_f32"]) is float
    assert got["np_i64"] == -7 and type(got["np_i64"]) is int
    assert got["np_u8"] == 200 and type(got["np_u8"]) is int
    assert got["np_bool"] is True
    assert got["np_in_list"] == [3, 0.5]
    assert got["tuple"] == [1, 2]
    assert out.array_keys() == []


@pytest.mark.timeout(10)
def test_non_contiguous_arrays_are_sent_in_c_order() -> None:
    base = np.arange(60, dtype=np.int32).reshape(3, 4, 5)
    views = {"t": base.transpose(2, 0, 1), "s": base[:, ::2, 1:], "f": np.asfortranarray(base)}
    out = decode_train(encode_train(Train(1, None, {"A": dict(views)})))
    for key, want in views.items():
        _assert_same_array(out.data["A"][key], np.ascontiguousarray(want))


@pytest.mark.timeout(10)
def test_encode_rejects_unknown_objects_and_protocol() -> None:
    with pytest.raises(TypeError, match="cannot encode set"):
        encode_train(Train(1, None, {"A": {"bad": {1, 2}}}))
    with pytest.raises(ValueError, match="2.2 only"):
        encode_train(Train(1, None, {"A": {}}), protocol="1.0")


# ---------------------------------------------------------------------------------------------
# dims extension
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_dims_extension_roundtrip_and_header() -> None:
    arr = _sample("uint16", (2, 3, 4))
    train = Train(
        9,
        None,
        {"DET": {"image.data": arr, "image.mask": arr.astype(bool)}},
        dims={"DET": {"image.data": ("frame", "ss", "fs")}},
    )
    frames = encode_train(train)
    headers = [msgpack.unpackb(frames[i], raw=False) for i in range(0, len(frames), 2)]
    array_headers = {h["path"]: h for h in headers if h["content"] == "array"}
    assert array_headers["image.data"]["dims"] == ["frame", "ss", "fs"]
    assert "dims" not in array_headers["image.mask"]
    out = decode_train(frames)
    assert out.get_dims("DET", "image.data") == ("frame", "ss", "fs")
    assert out.get_dims("DET", "image.mask") is None
    assert out.get_dims("NOPE", "image.data") is None
    # old clients ignore the extension and see the same arrays
    data, meta = kb_serializer.deserialize(frames)
    _assert_same_array(data["DET"]["image.data"], arr)
    assert meta["DET"]["timestamp.tid"] == 9


@pytest.mark.timeout(10)
def test_dims_of_wrong_length_are_ignored() -> None:
    arr = np.zeros((2, 3), np.uint8)
    frames = [
        msgpack.packb({"source": "S", "content": "msgpack", "metadata": {"timestamp.tid": 1}}),
        msgpack.packb({}),
        msgpack.packb(
            {
                "source": "S",
                "content": "array",
                "path": "a",
                "dtype": "uint8",
                "shape": [2, 3],
                "dims": ["x"],
            }
        ),
        arr.tobytes(),
    ]
    out = decode_train(frames)
    _assert_same_array(out.data["S"]["a"], arr)
    assert out.get_dims("S", "a") is None


# ---------------------------------------------------------------------------------------------
# zero copy
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_encode_is_zero_copy() -> None:
    arr = _sample("float32", (64, 64))
    frames = encode_train(Train(1, None, {"A": {"x": arr}}))
    assert np.shares_memory(np.frombuffer(frames[3], np.uint8), arr)


@pytest.mark.timeout(10)
def test_decoded_arrays_are_read_only_views_on_zmq_frames() -> None:
    arrays = {"small": _sample("int32", (5,)), "big": _sample("uint16", (256, 512))}
    frames = _zmq_roundtrip(encode_train(Train(3, None, {"A": dict(arrays)})))
    assert all(isinstance(f, zmq.Frame) for f in frames)
    out = decode_train(frames)
    by_path = {msgpack.unpackb(frames[i].bytes)["path"]: frames[i + 1] for i in (2, 4)}
    for key, want in arrays.items():
        got = out.data["A"][key]
        _assert_same_array(got, want)
        assert np.shares_memory(got, np.frombuffer(by_path[key].buffer, np.uint8)), key
        assert not np.shares_memory(got, want)
        assert not got.flags.writeable
        with pytest.raises(ValueError):
            got[0] = 1
    assert out.buffers == frames  # the train keeps its frames alive


@pytest.mark.timeout(10)
def test_decoded_arrays_are_views_on_bytes_frames() -> None:
    arr = _sample("float64", (10, 10))
    frames = [
        bytes(memoryview(f).cast("B")) for f in encode_train(Train(3, None, {"A": {"x": arr}}))
    ]
    got = decode_train(frames).data["A"]["x"]
    _assert_same_array(got, arr)
    assert np.shares_memory(got, np.frombuffer(frames[3], np.uint8))
    assert not got.flags.writeable


# ---------------------------------------------------------------------------------------------
# Train
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_train_get_accepts_value_spelling() -> None:
    train = Train(
        8,
        None,
        {"MOTOR": {"actualPosition": 1.5, "targetPosition.value": 2.5, "both": 1, "both.value": 2}},
    )
    assert train.get("MOTOR", "actualPosition") == 1.5
    assert train.get("MOTOR", "actualPosition.value") == 1.5
    assert train.get("MOTOR", "targetPosition") == 2.5
    assert train.get("MOTOR", "targetPosition.value") == 2.5
    assert train.get("MOTOR", "both") == 1  # the exact spelling wins
    assert train.get("MOTOR", "both.value") == 2
    assert train.get("MOTOR", "nope", None) is None
    assert train.get("OTHER", "x", default=0) == 0
    with pytest.raises(MissingData, match="train 8: source 'MOTOR' has no key 'nope'"):
        train.get("MOTOR", "nope")
    with pytest.raises(MissingData, match="train 8: no source 'OTHER'") as info:
        train.get("OTHER", "x")
    assert isinstance(info.value, KeyError)


@pytest.mark.timeout(10)
def test_train_copy_owns_memory_and_keeps_values() -> None:
    frames = [
        bytes(memoryview(f).cast("B"))
        for f in encode_train(Train(2, 1.0, {"A": {"x": np.arange(4.0), "v": 3}}))
    ]
    view = decode_train(frames)
    own = view.copy()
    assert (own.train_id, own.timestamp, own.meta, own.dims) == (2, 1.0, view.meta, view.dims)
    assert own.meta["A"] is not view.meta["A"]
    _assert_same_array(own.data["A"]["x"], view.data["A"]["x"])
    x = own.data["A"]["x"]
    assert x.flags.owndata and x.flags.writeable
    assert not np.shares_memory(x, view.data["A"]["x"])
    x[0] = 99
    assert view.data["A"]["x"][0] == 0
    assert own.data["A"]["v"] == 3 and own.buffers == []


@pytest.mark.timeout(10)
def test_decode_errors_are_malformed_messages() -> None:
    with pytest.raises(MalformedMessage) as info:
        decode_train([])
    assert info.value.reason == "empty message"
    assert isinstance(info.value, ValueError)
