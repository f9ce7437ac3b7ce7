"""Protocol round trips, zero-copy decoding, metadata and compatibility with karabo_bridge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from karabo_bridge import serializer as kb_serializer

from beamstream.streamer import MalformedMessage, MissingData, Train, decode_train, encode_train
from beamstream.streamer.protocol import train_metadata

NUMERIC_DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    ">u2",  # explicit big-endian: the dtype string travels as is
    ">f8",
]

PLAIN = {
    "int": -(2**62),
    "uint": 2**64 - 1,
    "float": 3.25,
    "str": "ünïcode ✓",
    "bytes": b"\x00\xff raw",
    "none": None,
    "true": True,
    "list": [1, "two", 3.0, [4, [5]]],
    "nested": {"a": {"b": [1, 2, {"c": "d"}]}, "empty": {}},
    "empty_list": [],
}


def _sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Deterministic non-trivial values of ``dtype`` and ``shape``."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        values = rng.integers(0, 2, size=shape)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        values = rng.integers(max(info.min, -1000), min(info.max, 60000), size=shape, endpoint=True)
    elif dt.kind == "c":
        values = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    else:
        values = rng.normal(scale=100, size=shape)
    return np.asarray(values).astype(dt)  # asarray: shape () stays a 0-d array


def _assert_same_array(got: np.ndarray, want: np.ndarray) -> None:
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


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
# metadata
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
@pytest.mark.parametrize("now", [1_700_000_000.123456, 1_712_345_678.0, 1_700_000_000.5, 1.000001])
def test_timestamp_fields_match_karabo_bridge(monkeypatch: pytest.MonkeyPatch, now: float) -> None:
    monkeypatch.setattr(kb_serializer, "time", lambda: now)
    want = kb_serializer.timestamp()
    meta = train_metadata(Train(10_000_000_000, now), "SPB/DET")
    assert {k: meta[k] for k in want} == want
    assert isinstance(meta["timestamp.sec"], str) and isinstance(meta["timestamp.frac"], str)
    assert len(meta["timestamp.frac"]) == 18
    assert meta["timestamp.tid"] == 10_000_000_000 and meta["source"] == "SPB/DET"
    # and karabo_bridge's own dummy timestamps decode to the same time
    frames = kb_serializer.serialize(
        {"SPB/DET": {"v": 1}}, {"SPB/DET": {"timestamp.tid": 7}}, dummy_timestamps=True
    )
    out = decode_train(frames)
    assert out.timestamp == now
    assert out.meta["SPB/DET"] == {"timestamp.tid": 7, **want}


@pytest.mark.timeout(10)
def test_metadata_on_the_wire() -> None:
    train = Train(
        123,
        1_700_000_001.75,
        {"B": {"x": np.arange(3)}, "A": {"v": 1}},
        meta={"A": {"ignored_keys": ["secret"]}},
    )
    frames = encode_train(train)
    headers = [msgpack.unpackb(frames[i], raw=False) for i in range(0, len(frames), 2)]
    assert [h["source"] for h in headers] == ["A", "B", "B"]  # sources sorted, msgpack first
    assert [h["content"] for h in headers] == ["msgpack", "msgpack", "array"]
    assert headers[0]["metadata"] == {
        "ignored_keys": ["secret"],
        "source": "A",
        "timestamp.tid": 123,
        "timestamp": 1_700_000_001.75,
        "timestamp.sec": "1700000001",
        "timestamp.frac": "750000000000000000",
    }
    assert headers[2] == {
        "source": "B",
        "content": "array",
        "path": "x",
        "dtype": "int64",
        "shape": [3],
    }
    out = decode_train(frames)
    assert out.meta["A"] == headers[0]["metadata"]
    assert out.meta["B"]["timestamp.tid"] == 123


@pytest.mark.timeout(10)
def test_timestamp_from_sec_and_frac_when_no_float() -> None:
    meta = {
        "timestamp.tid": 5,
        "timestamp.sec": "1700000000",
        "timestamp.frac": "250000000000000000",
    }
    out = decode_train(kb_serializer.serialize({"A": {}}, {"A": meta}))
    assert out.timestamp == pytest.approx(1_700_000_000.25, abs=1e-6)
    no_time = decode_train(kb_serializer.serialize({"A": {}}, {"A": {"timestamp.tid": 5}}))
    assert no_time.timestamp is None and no_time.train_id == 5


@pytest.mark.timeout(10)
def test_train_id_is_the_smallest_of_the_sources() -> None:
    meta = {"A": {"timestamp.tid": 11}, "B": {"timestamp.tid": 10}}
    out = decode_train(kb_serializer.serialize({"A": {}, "B": {}}, meta))
    assert out.train_id == 10
    assert out.meta["A"]["timestamp.tid"] == 11


# ---------------------------------------------------------------------------------------------
# karabo_bridge compatibility (both directions)
# ---------------------------------------------------------------------------------------------
def _kb_train(tid: int) -> tuple[dict, dict]:
    data = {
        "SPB_DET_AGIPD1M-1/DET/0CH0:xtdf": {
            "image.data": _sample("uint16", (8, 2, 16, 32), seed=tid),
            "image.cellId": np.arange(8, dtype=np.uint16),
            "image.pulseId": np.arange(8, dtype=np.uint64),
            "image.passport": ["a", "b"],
            "header.pulseCount": np.int32(8),
        },
        "SA1_XTD2_XGM/DOOCS/MAIN": {
            "pulseEnergy.photonFlux": 12.5,
            "data.intensityTD": _sample("float32", (1000,), seed=tid + 1),
            "flags": [True, False],
            "cplx": _sample("complex64", (3,)),
        },
    }
    meta = {
        src: {
            "source": src,
            "timestamp": 1_700_000_000.5,
            "timestamp.sec": "1700000000",
            "timestamp.frac": "500000000000000000",
            "timestamp.tid": tid,
        }
        for src in data
    }
    return data, meta


def _assert_matches_kb(train: Train, data: dict, meta: dict) -> None:
    assert sorted(train.data) == sorted(data)
    for src, values in data.items():
        assert sorted(train.data[src]) == sorted(values), src
        for key, want in values.items():
            got = train.data[src][key]
            if isinstance(want, np.ndarray):
                _assert_same_array(got, want)
            elif isinstance(want, np.generic):
                assert got == want.item()
            else:
                assert got == want, (src, key)
        assert train.meta[src] == meta[src]


@pytest.mark.timeout(10)
def test_decode_karabo_bridge_protocol_2_2() -> None:
    data, meta = _kb_train(10_000_000_123)
    out = decode_train(kb_serializer.serialize(data, meta, protocol_version="2.2"))
    assert out.train_id == 10_000_000_123
    assert out.timestamp == 1_700_000_000.5
    _assert_matches_kb(out, data, meta)


@pytest.mark.timeout(10)
def test_decode_karabo_bridge_protocol_1_0() -> None:
    data, meta = _kb_train(10_000_000_124)
    frames = kb_serializer.serialize(data, meta, protocol_version="1.0")
    assert len(frames) == 1
    out = decode_train(frames)
    assert out.train_id == 10_000_000_124
    # msgpack-numpy turns numpy scalars into numpy scalars again
    _assert_matches_kb(out, data, meta)
    assert out.nbytes == len(frames[0])


@pytest.mark.timeout(30)
def test_protocol_1_0_decodes_without_msgpack_numpy(tmp_path: Path) -> None:
    data, meta = _kb_train(77)
    msg = tmp_path / "msg.bin"
    msg.write_bytes(kb_serializer.serialize(data, meta, protocol_version="1.0")[0])
    code = (
        "import sys; sys.modules['msgpack_numpy'] = None\n"
        "from beamstream.streamer import decode_train\n"
        f"t = decode_train([open({str(msg)!r}, 'rb').read()])\n"
        "a = t.data['SPB_DET_AGIPD1M-1/DET/0CH0:xtdf']['image.data']\n"
        "print(t.train_id, a.dtype, 'x'.join(map(str, a.shape)), int(a.sum()),"
        " 'msgpack_numpy' in sys.modules and sys.modules['msgpack_numpy'] is not None)\n"
    )
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=25, cwd=root
    )
    assert res.returncode == 0, res.stderr
    want = data["SPB_DET_AGIPD1M-1/DET/0CH0:xtdf"]["image.data"]
    assert res.stdout.split() == [
        "77",
        "uint16",
        "x".join(map(str, want.shape)),
        str(int(want.sum())),
        "False",
    ]


@pytest.mark.timeout(10)
def test_decode_old_msgpack_numpy_str_keys() -> None:
    """Older msgpack-numpy wrote str keys and no ``kind``; both forms are accepted."""
    arr = _sample("<f4", (2, 3))
    msg = {
        "S": {
            "a": {"nd": True, "type": "<f4", "shape": [2, 3], "data": arr.tobytes()},
            "s": {"nd": False, "type": "<i8", "data": np.int64(-3).tobytes()},
            "metadata": {"timestamp.tid": 4},
        }
    }
    out = decode_train([msgpack.packb(msg, use_bin_type=True)])
    _assert_same_array(out.data["S"]["a"], arr)
    assert out.data["S"]["s"] == -3
    assert "metadata" not in out.data["S"]
    assert out.meta["S"] == {"timestamp.tid": 4}


@pytest.mark.timeout(10)
def test_decode_protocol_2_1_metadata_in_payload() -> None:
    frames = [
        msgpack.packb({"source": "S", "content": "msgpack"}),
        msgpack.packb({"v": 2, "metadata": {"source": "S", "timestamp.tid": 21}}),
    ]
    out = decode_train(frames)
    assert out.train_id == 21
    assert out.data == {"S": {"v": 2}}


@pytest.mark.timeout(10)
def test_karabo_bridge_deserializes_beamstream_output() -> None:
    arrays = {dt: _sample(dt, (3, 4), seed=i) for i, dt in enumerate(NUMERIC_DTYPES)}
    values = dict(PLAIN) | {"scalar": np.float64(2.5)}
    train = Train(
        10_000_000_555,
        1_700_000_000.125,
        {"DET": dict(arrays), "MOTOR": values},
        meta={"DET": {"ignored_keys": []}},
    )
    data, meta = kb_serializer.deserialize(encode_train(train))
    assert sorted(data) == ["DET", "MOTOR"]
    for dt, want in arrays.items():
        _assert_same_array(data["DET"][dt], want)
    assert data["MOTOR"] == PLAIN | {"scalar": 2.5}
    want_meta = {
        "timestamp": 1_700_000_000.125,
        "timestamp.sec": "1700000000",
        "timestamp.frac": "125000000000000000",
        "timestamp.tid": 10_000_000_555,
    }
    assert meta["MOTOR"] == {"source": "MOTOR", **want_meta}
    assert meta["DET"] == {"source": "DET", "ignored_keys": [], **want_meta}


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
