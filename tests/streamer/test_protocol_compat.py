"""Protocol metadata on the wire (timestamps, train ids) and compatibility with karabo_bridge
in both directions: its serializer's 2.2, 2.1 and 1.0 messages, and its reading of ours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest
from karabo_bridge import serializer as kb_serializer

from beamstream.streamer import Train, decode_train, encode_train
from beamstream.streamer.protocol import train_metadata
from tests.streamer._protocol_helpers import (
    NUMERIC_DTYPES,
    PLAIN,
    _assert_same_array,
    _sample,
)


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
        _assert_same_array(data["DET"][dt], want, native=False)  # karabo_bridge keeps the order
    assert data["MOTOR"] == PLAIN | {"scalar": 2.5}
    want_meta = {
        "timestamp": 1_700_000_000.125,
        "timestamp.sec": "1700000000",
        "timestamp.frac": "125000000000000000",
        "timestamp.tid": 10_000_000_555,
    }
    assert meta["MOTOR"] == {"source": "MOTOR", **want_meta}
    assert meta["DET"] == {"source": "DET", "ignored_keys": [], **want_meta}
