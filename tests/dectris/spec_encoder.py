"""An encoder of DECTRIS Stream V2 / v1 messages written from the specification, for tests.

Independent of `beamstream.dectris.encode`: arrays are framed by hand with `cbor2.CBORTag` after
the stream_v2 README (tag 40/1040 + RFC 8746 typed-array tags), and compressed payloads come from
the reference HDF5 filters of `hdf5plugin` (Bitshuffle-LZ4 and LZ4, read back with
``read_direct_chunk``), which write the same framing the detector sends.
"""

from __future__ import annotations

import datetime as dt
import json

import cbor2
import h5py
import hdf5plugin
import numpy as np

TYPED = {"uint8": 64, "uint16": 69, "uint32": 70, "float32": 85, ">u4": 66}


def filter_chunk(a: np.ndarray, algorithm: str) -> bytes:
    """The chunk the reference HDF5 filter writes for ``a`` (bslz4 or lz4 framing)."""
    filt = hdf5plugin.Bitshuffle(cname="lz4") if algorithm == "bslz4" else hdf5plugin.LZ4()
    with h5py.File("spec.h5", "w", driver="core", backing_store=False) as f:
        d = f.create_dataset("x", data=a[None], chunks=(1, *a.shape), **filt)
        mask, chunk = d.id.read_direct_chunk((0,) * (a.ndim + 1))
    assert mask == 0
    return bytes(chunk)


def typed(a: np.ndarray, compression: str | None = None, tag: int | None = None) -> cbor2.CBORTag:
    tag = tag or TYPED[a.dtype.name]
    payload = a.tobytes()
    if compression is not None:
        size = a.dtype.itemsize if compression == "bslz4" else 0
        payload = cbor2.CBORTag(56500, [compression, size, filter_chunk(a, compression)])
    return cbor2.CBORTag(tag, payload)


def mda(a: np.ndarray, compression: str | None = None, column_major: bool = False):
    """MultiDimArray: tag 40 (row-major) or 1040 (column-major) of [dims, typed array]."""
    if column_major:
        flat = a.ravel(order="F").copy()  # column-major element order
        return cbor2.CBORTag(1040, [list(a.shape), typed(flat, compression)])
    return cbor2.CBORTag(40, [list(a.shape), typed(np.ascontiguousarray(a), compression)])


def msg(m: dict) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(55799, m))


def start(series_id=7, uid="u-7", channels=("threshold_1",), shape=(16, 24), **extra) -> bytes:
    m = {
        "type": "start",
        "series_id": series_id,
        "series_unique_id": uid,
        "arm_date": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "channels": list(channels),
        "image_size_x": shape[1],
        "image_size_y": shape[0],
        "image_dtype": "uint32",
        "beam_center_x": 11.5,
        "beam_center_y": 7.25,
        "pixel_size_x": 7.5e-5,
        "pixel_size_y": 7.5e-5,
        "detector_translation": [0.0, 0.0, 0.6],
        "incident_wavelength": 1.0332,
        "incident_energy": 12000.0,
        "count_time": 0.01,
        "frame_time": 0.01,
        "number_of_images": 4,
    }
    m.update(extra)
    return msg(m)


def image(series_id=7, uid="u-7", image_id=0, data=None, user_data=None, **extra) -> bytes:
    m = {
        "type": "image",
        "series_id": series_id,
        "series_unique_id": uid,
        "image_id": image_id,
        "start_time": [image_id * 10, 1000],
        "stop_time": [image_id * 10 + 10, 1000],
        "real_time": [10, 1000],
        "data": data,
    }
    if user_data is not None:
        m["user_data"] = user_data
    m.update(extra)
    return msg(m)


def end(series_id=7, uid="u-7") -> bytes:
    return msg({"type": "end", "series_id": series_id, "series_unique_id": uid})


# -- legacy v1 (peers.md B.7) -----------------------------------------------------------------
def v1_header(series=3, config=None) -> list[bytes]:
    head = {"htype": "dheader-1.0", "series": series, "header_detail": "basic"}
    return [json.dumps(head).encode(), json.dumps(config or {}).encode()]


def v1_image(series, frame, a: np.ndarray, encoding="bs32-lz4<") -> list[bytes]:
    blob = (
        a.tobytes()
        if encoding == "<"
        else filter_chunk(a, "lz4" if encoding == "lz4<" else "bslz4")
    )
    d = {
        "htype": "dimage_d-1.0",
        "shape": [a.shape[1], a.shape[0]],
        "type": a.dtype.name,
        "encoding": encoding,
        "size": len(blob),
    }
    h = {"htype": "dimage-1.0", "series": series, "frame": frame, "hash": ""}
    c = {
        "htype": "dconfig-1.0",
        "start_time": frame * 10**7,
        "stop_time": frame * 10**7 + 10**7,
        "real_time": 10**7,
    }
    return [json.dumps(h).encode(), json.dumps(d).encode(), blob, json.dumps(c).encode()]


def v1_end(series=3) -> list[bytes]:
    return [json.dumps({"htype": "dseries_end-1.0", "series": series}).encode()]
