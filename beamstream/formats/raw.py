"""Raw recordings: every received train written unchanged, for `beamstream replay`.

Layout (``beamstream-raw/1``, see ``docs/replay.md``), N trains, every dataset extendible:

``/index/train_id`` (N,) uint64, ``/index/timestamp`` (N,) float64 (NaN: none)
    One row per train.
``/sources/<source>/meta`` and ``.../plain``: ``bytes`` (total,) uint8 and ``count`` (N,) int64
    Per train the msgpack encoding of the source's metadata map and of its plain (non-array)
    values, concatenated; ``count`` is the length of each train's piece, -1 when the source is
    absent from the train.
``/sources/<source>/arrays/<key>[@k]``: ``data`` (rows, *inner), ``count`` (N,) int64 and
    ``crc`` (N,) uint32
    The arrays of each train concatenated along their first axis (``count`` rows each, -1:
    absent; ``crc`` the CRC-32 of each train's bytes, verified on replay: data attribute
    ``checksum = "crc32"``); attributes ``ndim`` (0 for 0-d arrays, stored as one row) and
    ``dims`` (JSON, the axis names sent with the array, when there were). A key whose trailing
    shape, dtype or dims change gets a further version ``<key>@2``, ... (each train's array is
    in exactly one).

Source names are escaped as HDF5 link names (``/`` -> ``%2F``). The file is written in SWMR mode,
so a killed recorder leaves a readable file holding every train flushed so far.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

import beamstream
from beamstream.formats.appendfile import AppendFile
from beamstream.formats.h5layout import compression_kwargs, h5name, to_json
from beamstream.streamer.protocol import _plain_default
from beamstream.streamer.train import Train

__all__ = ["RawWriter", "RAW_FORMAT", "checksum"]

log = logging.getLogger(__name__)

RAW_FORMAT = "beamstream-raw/1"
_U8 = np.dtype(np.uint8)
_I8 = np.dtype(np.int64)
_U4 = np.dtype(np.uint32)


def checksum(arr: np.ndarray) -> int:
    """CRC-32 of an array's bytes (C order), as stored per train in ``.../crc``."""
    return zlib.crc32(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, default=_plain_default)


class RawWriter:
    """Write trains to a raw recording (synchronously; `RawRecorder` adds the thread).

    Parameters
    ----------
    path
        The file to create.
    compression
        ``none`` (default), ``gzip``, ``lzf`` or an hdf5plugin filter name (arrays only).
    swmr
        Write in SWMR mode (readable while written, survives a kill).
    """

    def __init__(
        self, path: str | os.PathLike[str], compression: str | None = None, swmr: bool = True
    ):
        self.path = Path(path)
        self.compression = compression_kwargs(compression)
        attrs = {
            "beamstream_format": RAW_FORMAT,
            "beamstream_version": beamstream.__version__,
            "created": time.time(),
        }
        self.file = AppendFile(self.path, attrs, swmr=swmr)
        self.file.create(
            {
                "index/train_id": ((), np.dtype(np.uint64), 0, 1024),
                "index/timestamp": ((), np.dtype(np.float64), np.nan, 1024),
            }
        )
        self.trains = 0
        self.bytes = 0
        #: ``(source, key)`` -> list of (dataset group, inner shape, dtype, dims)
        self._versions: dict[tuple[str, str], list[tuple[str, tuple, np.dtype, Any]]] = {}
        self._sources: set[str] = set()

    def write(self, trains: Iterable[Train]) -> int:
        """Append trains (one HDF5 resize per dataset per call) and flush; returns how many."""
        batch = list(trains)
        if not batch:
            return 0
        n0, n = self.trains, len(batch)
        self._create_new(batch)
        tids = np.array([t.train_id for t in batch], np.uint64)
        stamps = np.array([np.nan if t.timestamp is None else t.timestamp for t in batch])
        self.file.extend("index/train_id", tids)
        self.file.extend("index/timestamp", stamps)
        for src in self._sources:
            self._write_plain(src, batch)
        for (src, key), versions in self._versions.items():
            self._write_arrays(src, key, versions, batch)
        self.trains = n0 + n
        self.file.flush()
        return n

    def close(self) -> None:
        self.file.close()

    # -- internals ------------------------------------------------------------------------------
    def _create_new(self, batch: list[Train]) -> None:
        specs: dict[str, tuple] = {}
        attrs: dict[str, dict[str, Any]] = {}
        for t in batch:
            for src, values in t.data.items():
                base = f"sources/{h5name(src)}"
                if src not in self._sources:
                    self._sources.add(src)
                    for part in ("meta", "plain"):
                        specs[f"{base}/{part}/bytes"] = ((), _U8, 0, 1 << 16)
                        specs[f"{base}/{part}/count"] = ((), _I8, -1, 1024)
                for key, arr in values.items():
                    if not isinstance(arr, np.ndarray):
                        continue
                    inner = arr.shape[1:] if arr.ndim else ()
                    dims = t.dims.get(src, {}).get(key)
                    dims = list(dims) if dims else None
                    versions = self._versions.setdefault((src, key), [])
                    if any(v[1] == inner and v[2] == arr.dtype and v[3] == dims for v in versions):
                        continue
                    name = f"{base}/arrays/{h5name(key)}"
                    if versions:
                        name += f"@{len(versions) + 1}"
                    versions.append((name, inner, arr.dtype, dims))
                    rows = max(1, arr.shape[0] if arr.ndim else 1)
                    row_bytes = max(1, int(np.prod(inner, dtype=np.int64)) * arr.dtype.itemsize)
                    chunk = max(1, min(rows, (64 << 20) // row_bytes))  # one train, <= 64 MiB
                    specs[f"{name}/data"] = (inner, arr.dtype, 0, chunk)
                    specs[f"{name}/count"] = ((), _I8, -1, 1024)
                    specs[f"{name}/crc"] = ((), _U4, 0, 1024)
                    attrs[f"{name}/data"] = {
                        "ndim": arr.ndim,
                        "key": key,
                        "source": src,
                        "checksum": "crc32",
                    }
                    if dims:
                        attrs[f"{name}/data"]["dims"] = to_json(dims)
        # per-train ``count`` datasets are back-filled for earlier trains; concatenated ones not
        per_train = {k: v for k, v in specs.items() if k.endswith(("/count", "/crc"))}
        concat = {k: v for k, v in specs.items() if not k.endswith(("/count", "/crc"))}
        self.file.create(per_train, rows=self.trains)
        self.file.create(concat, rows=0, compression=self.compression, attrs=attrs)

    def _write_plain(self, src: str, batch: list[Train]) -> None:
        base = f"sources/{h5name(src)}"
        for part in ("meta", "plain"):
            counts = np.full(len(batch), -1, np.int64)
            pieces = []
            for i, t in enumerate(batch):
                values = t.data.get(src)
                if values is None:
                    continue
                if part == "meta":
                    blob = _pack(t.meta.get(src, {}))
                else:
                    blob = _pack({k: v for k, v in values.items() if not isinstance(v, np.ndarray)})
                counts[i] = len(blob)
                pieces.append(blob)
            self.file.extend(f"{base}/{part}/count", counts)
            if pieces:
                self.file.extend(f"{base}/{part}/bytes", np.frombuffer(b"".join(pieces), np.uint8))

    def _write_arrays(self, src: str, key: str, versions: list, batch: list[Train]) -> None:
        for name, inner, dtype, dims in versions:
            counts = np.full(len(batch), -1, np.int64)
            crcs = np.zeros(len(batch), np.uint32)
            parts = []
            for i, t in enumerate(batch):
                arr = t.data.get(src, {}).get(key)
                if not isinstance(arr, np.ndarray):
                    continue
                a_inner = arr.shape[1:] if arr.ndim else ()
                a_dims = t.dims.get(src, {}).get(key)
                if (
                    a_inner != inner
                    or arr.dtype != dtype
                    or (list(a_dims) if a_dims else None) != dims
                ):
                    continue
                rows = arr.reshape(1) if arr.ndim == 0 else arr
                counts[i] = len(rows)
                crcs[i] = checksum(rows)
                parts.append(rows)
                self.bytes += arr.nbytes
            self.file.extend(f"{name}/count", counts)
            self.file.extend(f"{name}/crc", crcs)
            if len(parts) == 1:
                self.file.extend(f"{name}/data", parts[0])
            elif parts:
                self.file.extend(f"{name}/data", np.concatenate(parts))
