"""Decoding DECTRIS V2 and v1 messages against the spec encoder (cbor2 6, reference filters)."""

from __future__ import annotations

import cbor2
import numpy as np
import pytest

from beamstream.dectris.cbor import decode_cbor
from beamstream.dectris.legacy import parse_v1
from beamstream.dectris.limits import DEFAULT_LIMITS, DectrisLimits, MalformedMessage
from beamstream.dectris.messages import Image, SeriesEnd, SeriesStart, parse_v2

from . import spec_encoder as enc


def test_cbor2_version_pinned_calls_hooks_with_immutable_flag():
    # cbor2 6 calls tag_hook(tag, immutable); our hooks must work with the installed version
    from importlib.metadata import version

    assert int(version("cbor2").split(".")[0]) >= 6
    seen = []
    cbor2.loads(
        enc.msg({"a": cbor2.CBORTag(70, b"\0" * 4)}),
        tag_hook=lambda t, imm: seen.append((t.tag, imm)),
    )
    assert seen == [(70, True)]


def _parse(buf: bytes, limits: DectrisLimits = DEFAULT_LIMITS):
    return parse_v2(decode_cbor(buf, limits), limits)


def test_start_fields_and_corrections():
    mask = (np.arange(16 * 24).reshape(16, 24) % 7 == 0).astype(np.uint32)
    flat = np.linspace(0.5, 1.5, 16 * 24, dtype=np.float32).reshape(16, 24)
    s = _parse(
        enc.start(
            pixel_mask={"threshold_1": enc.mda(mask)},
            flatfield={"threshold_1": enc.mda(flat)},
            user_data={"scan_id": 12},
        )
    )
    assert isinstance(s, SeriesStart)
    assert (s.series_id, s.unique_id, s.channels) == (7, "u-7", ("threshold_1",))
    assert s.image_size == (16, 24)
    assert s.arm_time == pytest.approx(1767323045.0)
    np.testing.assert_array_equal(s.pixel_mask["threshold_1"], mask)
    np.testing.assert_array_equal(s.flatfield["threshold_1"], flat)
    assert s.user_data == {"scan_id": 12}
    assert s.geometry_fields()["beam_center_x"] == 11.5
    assert "pixel_mask" not in s.header  # arrays are not kept in the plain header


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "float32"])
@pytest.mark.parametrize("compression", [None, "bslz4", "lz4"])
@pytest.mark.parametrize("column_major", [False, True])
def test_image_arrays_round_trip(dtype, compression, column_major):
    rng = np.random.default_rng(3)
    a = rng.poisson(2.0, (16, 24)).astype(dtype)
    b = (a * 3).astype(dtype)
    img = _parse(
        enc.image(
            data={
                "threshold_1": enc.mda(a, compression, column_major),
                "threshold_2": enc.mda(b, compression, column_major),
            },
            image_id=5,
            user_data={"x": 1.5},
        )
    )
    assert isinstance(img, Image)
    assert img.image_id == 5 and img.start_time == pytest.approx(0.05)
    assert img.real_time == pytest.approx(0.01)
    assert img.data["threshold_1"].compressed == (compression is not None)
    np.testing.assert_array_equal(img.data["threshold_1"].materialize(), a)
    np.testing.assert_array_equal(img.data["threshold_2"].materialize(), b)
    assert img.user_data == {"x": 1.5}


def test_big_endian_typed_array():
    a = np.arange(12, dtype=">u4").reshape(3, 4)
    img = _parse(enc.image(data={"t": cbor2.CBORTag(40, [[3, 4], cbor2.CBORTag(66, a.tobytes())])}))
    out = img.data["t"].materialize()
    assert out.dtype == np.dtype("uint32") and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


def test_end():
    e = _parse(enc.end())
    assert isinstance(e, SeriesEnd) and (e.series_id, e.unique_id) == (7, "u-7")


def _reason(buf: bytes, limits: DectrisLimits = DEFAULT_LIMITS) -> str:
    with pytest.raises(MalformedMessage) as info:
        _parse(buf, limits)
    return info.value.reason


def test_bad_messages_have_reasons():
    a = np.ones((16, 24), np.uint32)
    assert _reason(b"\xd9\xd9\xf7\xff\x00garbage") == "cbor_invalid"
    assert _reason(b"plain text") == "no_signature"
    assert _reason(enc.msg([1, 2])) == "not_a_map"
    assert _reason(enc.msg({"type": "image", "x": cbor2.CBORTag(9999, 1)})) == "unknown_tag"
    assert _reason(enc.msg({"type": "bogus"})) == "unknown_type"
    assert _reason(enc.msg({"type": "image", "series_id": 1})) == "missing_key"
    # a payload shorter than dims * itemsize
    short = cbor2.CBORTag(40, [[16, 24], cbor2.CBORTag(70, b"\0" * 10)])
    assert _reason(enc.image(data={"t": short})) == "size_mismatch"
    # compression header lying about the uncompressed size
    chunk = bytearray(enc.filter_chunk(a, "bslz4"))
    chunk[0:8] = (a.nbytes * 2).to_bytes(8, "big")
    lying = cbor2.CBORTag(
        40, [[16, 24], cbor2.CBORTag(70, cbor2.CBORTag(56500, ["bslz4", 4, bytes(chunk)]))]
    )
    assert _reason(enc.image(data={"t": lying})) == "size_mismatch"
    # a decompression bomb: dims beyond the limit, refused before anything is allocated
    bomb = cbor2.CBORTag(
        40, [[100000, 100000], cbor2.CBORTag(70, cbor2.CBORTag(56500, ["bslz4", 4, bytes(chunk)]))]
    )
    assert _reason(enc.image(data={"t": bomb})) == "too_large"
    small = DectrisLimits(max_array_bytes=1000)
    assert _reason(enc.image(data={"t": enc.mda(a, "bslz4")}), small) == "too_large"
    assert _reason(enc.image(data={"t": enc.mda(a)}), DectrisLimits(max_message_bytes=100)) == (
        "too_large"
    )


def test_truncated_compressed_block_fails_at_decompression():
    from beamstream.dectris.codec import CodecError

    a = np.random.default_rng(1).poisson(3, (16, 24)).astype(np.uint32)
    chunk = enc.filter_chunk(a, "bslz4")
    arr = cbor2.CBORTag(
        40,
        [[16, 24], cbor2.CBORTag(70, cbor2.CBORTag(56500, ["bslz4", 4, chunk[: len(chunk) // 2]]))],
    )
    img = _parse(enc.image(data={"t": arr}))
    with pytest.raises(CodecError) as info:
        img.data["t"].materialize()
    assert info.value.reason == "decompress_failed"


def test_v1_messages():
    a = np.random.default_rng(2).poisson(2, (16, 24)).astype(np.uint32)
    cfg = {
        "beam_center_x": 3.0,
        "x_pixel_size": 7.5e-5,
        "wavelength": 1.0,
        "x_pixels_in_detector": 24,
        "y_pixels_in_detector": 16,
        "detector_distance": 0.5,
    }
    s = parse_v1(enc.v1_header(3, cfg), DEFAULT_LIMITS)
    assert isinstance(s, SeriesStart) and s.series_id == 3 and s.image_size == (16, 24)
    assert s.header["pixel_size_x"] == 7.5e-5 and s.header["incident_wavelength"] == 1.0
    for encoding in ("<", "lz4<", "bs32-lz4<"):
        img = parse_v1(enc.v1_image(3, 2, a, encoding), DEFAULT_LIMITS)
        assert img.image_id == 2 and img.start_time == pytest.approx(0.02)
        np.testing.assert_array_equal(img.data["data"].materialize(), a)
    e = parse_v1(enc.v1_end(3), DEFAULT_LIMITS)
    assert isinstance(e, SeriesEnd) and e.series_id == 3
    with pytest.raises(MalformedMessage) as info:
        parse_v1([b"{not json"], DEFAULT_LIMITS)
    assert info.value.reason == "json_invalid"
