"""Eiger NeXus/NXmx master + data files: written from a stream (recording), read as a stream.

Layout (as DECTRIS writes it, the parts beamstream uses):

* master ``<prefix>_master.h5``: ``/entry/instrument/detector/{beam_center_x, beam_center_y,
  x_pixel_size, y_pixel_size, detector_distance, count_time, frame_time, description,
  sensor_material, sensor_thickness}``, ``.../detectorSpecific/{pixel_mask, flatfield,
  x_pixels_in_detector, y_pixels_in_detector, nimages}``, ``/entry/instrument/beam/
  incident_wavelength`` [A]; ``/entry/data/data_000001`` an external link to the data file;
* data ``<prefix>_data_000001.h5``: ``/entry/data/data`` (images, y, x) in chunks of one image,
  ``bslz4`` (HDF5 filter 32008) or ``lz4`` (32004) or none.

beamstream adds what a stream carries beyond that, in ``detectorSpecific``: ``channels``, the
further channels' data (``/entry/data/<channel>_000001``), ``image_id``, ``start_time`` and
``user_data`` (JSON per image), and the start message's plain fields (``start_header`` JSON).

Compressed images are moved as they are: `NXmxWriter` writes the stream's blocks with
``write_direct_chunk``, `NXmxStream` reads chunks with ``read_direct_chunk`` and sends them in
tag 56500, so nothing is recompressed. Chunks of another shape are read through the filters of
`hdf5plugin` and compressed again.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import encode
from .arrays import LazyArray
from .codec import Compressed, compress
from .messages import Image, SeriesStart

__all__ = ["NXmxWriter", "NXmxStream", "is_nxmx", "master_path"]

_DET = "entry/instrument/detector"
_SPEC = f"{_DET}/detectorSpecific"
#: NXmx detector dataset -> start-message field
_FIELDS = {
    "beam_center_x": "beam_center_x",
    "beam_center_y": "beam_center_y",
    "x_pixel_size": "pixel_size_x",
    "y_pixel_size": "pixel_size_y",
    "detector_distance": "detector_distance",
    "count_time": "count_time",
    "frame_time": "frame_time",
    "sensor_thickness": "sensor_thickness",
}
_TEXT = {"description": "detector_description", "sensor_material": "sensor_material"}
_SPECIFIC = {"x_pixels_in_detector": "image_size_x", "y_pixels_in_detector": "image_size_y",
             "nimages": "number_of_images"}  # fmt: skip
_BSLZ4, _LZ4 = 32008, 32004


def master_path(prefix: str | Path, series_id: int) -> Path:
    return Path(f"{prefix}_{series_id:06d}_master.h5")


def is_nxmx(f: h5py.File) -> bool:
    """True for an NXmx master file (``/entry/data/data_000001`` and a detector group)."""
    return "entry/data" in f and _DET in f and any(k.startswith("data_") for k in f["entry/data"])


class NXmxWriter:
    """Write one series to an NXmx master + data pair (see the module docstring)."""

    def __init__(self, prefix: str | Path, start: SeriesStart):
        import hdf5plugin  # noqa: F401 - registers the filters the datasets declare

        self.master = master_path(prefix, start.series_id)
        self.datafile = Path(str(self.master).replace("_master.h5", "_data_000001.h5"))
        self.start = start
        self._data = h5py.File(self.datafile, "w")
        self._sets: dict[str, h5py.Dataset] = {}
        self._ids: list[int] = []
        self._times: list[float] = []
        self._user: list[str] = []
        self._write_master()

    def _write_master(self) -> None:
        s, h = self.start, self.start.header
        with h5py.File(self.master, "w") as f:
            entry = f.create_group("entry")
            entry.attrs["NX_class"] = "NXentry"
            det = f.create_group(_DET)
            det.attrs["NX_class"] = "NXdetector"
            for name, key in _FIELDS.items():
                if isinstance(h.get(key), int | float):
                    det[name] = float(h[key])
            for name, key in _TEXT.items():
                if isinstance(h.get(key), str):
                    det[name] = h[key]
            spec = f.create_group(_SPEC)
            for name, key in _SPECIFIC.items():
                if isinstance(h.get(key), int):
                    spec[name] = int(h[key])
            spec["channels"] = json.dumps(list(s.channels))
            spec["start_header"] = json.dumps(h, default=str)
            if s.user_data is not None:
                spec["start_user_data"] = json.dumps(s.user_data, default=str)
            for ch, m in s.pixel_mask.items():
                spec[_channel_name("pixel_mask", ch, s)] = m
            for ch, ff in s.flatfield.items():
                spec[_channel_name("flatfield", ch, s)] = ff
            beam = f.create_group("entry/instrument/beam")
            if isinstance(h.get("incident_wavelength"), int | float):
                beam["incident_wavelength"] = float(h["incident_wavelength"])
            if isinstance(h.get("incident_energy"), int | float):
                beam["incident_energy"] = float(h["incident_energy"])
            data = f.create_group("entry/data")
            data.attrs["NX_class"] = "NXdata"
            for k, ch in enumerate(s.channels or ("data",)):
                name = "data_000001" if k == 0 else f"{ch}_000001"
                inner = "/entry/data/data" if k == 0 else f"/entry/data/{ch}"
                data[name] = h5py.ExternalLink(self.datafile.name, inner)

    def _dataset(self, k: int, ch: str, arr: LazyArray) -> h5py.Dataset:
        if ch not in self._sets:
            import hdf5plugin

            p = arr.payload
            filt: dict[str, Any] = {}
            if isinstance(p, Compressed) and p.algorithm == "bslz4":
                filt = dict(hdf5plugin.Bitshuffle(cname="lz4"))
            elif isinstance(p, Compressed):
                filt = dict(hdf5plugin.LZ4())
            name = "data" if k == 0 else ch
            self._sets[ch] = self._data.create_dataset(
                f"entry/data/{name}", shape=(0, *arr.shape), maxshape=(None, *arr.shape),
                chunks=(1, *arr.shape), dtype=arr.dtype.newbyteorder("="), **filt,
            )  # fmt: skip
        return self._sets[ch]

    def image(self, img: Image) -> None:
        """Append one image (compressed blocks written unchanged when the filter matches)."""
        row = len(self._ids)
        for k, (ch, arr) in enumerate(img.data.items()):
            d = self._dataset(k, ch, arr)
            d.resize(row + 1, axis=0)
            p = arr.payload
            if isinstance(p, Compressed) and _filter_of(d) == _algorithm_filter(p.algorithm):
                d.id.write_direct_chunk((row, 0, 0), p.data)
            else:
                d[row] = arr.materialize()
        self._ids.append(img.image_id)
        self._times.append(np.nan if img.start_time is None else img.start_time)
        self._user.append(json.dumps(img.user_data, default=str))

    def close(self) -> None:
        self._data.close()
        with h5py.File(self.master, "a") as f:
            spec = f[_SPEC]
            spec["image_id"] = np.asarray(self._ids, np.int64)
            spec["start_time"] = np.asarray(self._times, np.float64)
            spec["user_data"] = np.asarray(self._user, dtype=h5py.string_dtype())
            if "nimages" not in spec:
                spec["nimages"] = len(self._ids)


def _channel_name(what: str, ch: str, s: SeriesStart) -> str:
    first = s.channels[0] if s.channels else ch
    return what if ch == first else f"{what}_{ch}"


def _filter_of(d: h5py.Dataset) -> int | None:
    plist = d.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code in (_BSLZ4, _LZ4):
            return code
    return None


def _algorithm_filter(algorithm: str) -> int:
    return _BSLZ4 if algorithm == "bslz4" else _LZ4


def _read(f: h5py.File, path: str, default: Any = None) -> Any:
    if path not in f:
        return default
    v = f[path][()]
    if isinstance(v, bytes):
        return v.decode()
    return v.item() if isinstance(v, np.generic) else v


class NXmxStream:
    """An NXmx master file as DECTRIS V2 messages (start, selected images, end).

    Parameters
    ----------
    path
        The master file (its data files next to it, through the external links).
    images
        Which images to send: a `beamstream.replay.select.TrainRange` over image positions, or
        over image ids (``id:START:STOP:STEP``); default all.
    """

    def __init__(self, path: str | Path, images: Any = None):
        import hdf5plugin  # noqa: F401 - filters for reading chunks that must be decoded

        self.path = Path(path)
        self.file = h5py.File(self.path, "r")
        if not is_nxmx(self.file):
            self.file.close()
            raise ValueError(f"{self.path}: not an NXmx master file (no /entry/data/data_*)")
        f = self.file
        channels = json.loads(_read(f, f"{_SPEC}/channels", '["threshold_1"]'))
        self.channels = tuple(channels) or ("threshold_1",)
        names = ["data_000001"] + [f"{ch}_000001" for ch in self.channels[1:]]
        self.sets = {ch: f[f"entry/data/{n}"] for ch, n in zip(self.channels, names, strict=True)}
        n = self.sets[self.channels[0]].shape[0]
        self.ids = np.asarray(_read(f, f"{_SPEC}/image_id", np.arange(n)))[:n]
        self.positions = [int(k) for k in images.indices(self.ids)] if images else list(range(n))
        self.times = np.asarray(_read(f, f"{_SPEC}/start_time", np.full(n, np.nan)))
        user = f[f"{_SPEC}/user_data"][()] if f"{_SPEC}/user_data" in f else None
        self.user = [json.loads(u) for u in user.astype(str)] if user is not None else None
        self.header = self._header()

    def __len__(self) -> int:
        return len(self.positions)

    def _header(self) -> dict[str, Any]:
        f = self.file
        h = json.loads(_read(f, f"{_SPEC}/start_header", "{}"))
        for name, key in {**_FIELDS, **_TEXT}.items():
            v = _read(f, f"{_DET}/{name}")
            if v is not None:
                h.setdefault(key, v)
        for name, key in _SPECIFIC.items():
            v = _read(f, f"{_SPEC}/{name}")
            if v is not None:
                h.setdefault(key, int(v))
        for key in ("incident_wavelength", "incident_energy"):
            v = _read(f, f"entry/instrument/beam/{key}")
            if v is not None:
                h.setdefault(key, float(v))
        d = self.sets[self.channels[0]]
        h.setdefault("image_size_y", int(d.shape[1]))
        h.setdefault("image_size_x", int(d.shape[2]))
        h.setdefault("image_dtype", d.dtype.name)
        h["number_of_images"] = len(self.positions)
        for k in ("type", "series_id", "series_unique_id", "arm_date", "channels"):
            h.pop(k, None)
        return h

    def messages(self, series_id: int = 1) -> Iterator[tuple[str, list[bytes]]]:
        """``(kind, [message])`` of the series: start, the selected images, end."""
        f = self.file
        uid = f"{self.path.name}-{series_id}"
        mask, flat = self._per_channel("pixel_mask"), self._per_channel("flatfield")
        ud = _read(f, f"{_SPEC}/start_user_data")
        yield "start", [encode.start_v2(
            series_id, uid, channels=self.channels, fields=self.header,
            arm_date=_dt.datetime.now(_dt.UTC), pixel_mask=mask, flatfield=flat,
            user_data=json.loads(ud) if ud else None,
        )]  # fmt: skip
        frame_time = float(self.header.get("frame_time", 0.0) or 0.0)
        for k in self.positions:
            data = {ch: self._chunk(d, k) for ch, d in self.sets.items()}
            t0 = float(self.times[k]) if np.isfinite(self.times[k]) else k * frame_time
            msg = {
                "type": "image", "series_id": series_id, "series_unique_id": uid,
                "image_id": int(self.ids[k]), "start_time": [round(t0 * 1e9), 10**9],
                "stop_time": [round((t0 + frame_time) * 1e9), 10**9],
                "real_time": [round(frame_time * 1e9), 10**9], "data": data,
            }  # fmt: skip
            if self.user is not None and self.user[k] is not None:
                msg["user_data"] = self.user[k]
            yield "image", [encode.encode_v2(msg)]
        yield "end", [encode.end_v2(series_id, uid)]

    def _per_channel(self, what: str) -> dict[str, np.ndarray]:
        out = {}
        for k, ch in enumerate(self.channels):
            path = f"{_SPEC}/{what}" if k == 0 else f"{_SPEC}/{what}_{ch}"
            if path in self.file:
                out[ch] = self.file[path][()]
        return out

    def _chunk(self, d: h5py.Dataset, k: int) -> Any:
        """One image as a MultiDimArray, compressed blocks passed through unchanged."""
        import cbor2

        code = _filter_of(d)
        shape = list(d.shape[1:])
        tag = encode.TAG_OF_DTYPE[d.dtype.name]
        if d.chunks == (1, *shape) and code is not None:
            mask, chunk = d.id.read_direct_chunk((k, 0, 0))
            if mask == 0:
                algo = "bslz4" if code == _BSLZ4 else "lz4"
                size = d.dtype.itemsize if algo == "bslz4" else 0
                payload = cbor2.CBORTag(56500, [algo, size, bytes(chunk)])
                return cbor2.CBORTag(40, [shape, cbor2.CBORTag(tag, payload)])
        a = np.ascontiguousarray(d[k])  # decoded by hdf5plugin's filter
        if code is None:
            return encode.multidim(a)
        c = compress(a, "bslz4")
        return cbor2.CBORTag(40, [shape, cbor2.CBORTag(tag, cbor2.CBORTag(
            56500, [c.algorithm, c.modifier, c.data]))])  # fmt: skip

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> NXmxStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
