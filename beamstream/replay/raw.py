"""`RawReader`: beamstream raw recordings (``beamstream-raw/1``, see `sinks.recorder`)."""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import msgpack
import numpy as np

from beamstream.formats.h5layout import from_json, open_h5
from beamstream.formats.raw import RAW_FORMAT, checksum
from beamstream.replay.base import FormatError, Reader
from beamstream.replay.select import Include, TrainRange, wanted, wanted_source
from beamstream.streamer.train import Train

__all__ = ["RawReader", "is_raw"]


def _unname(name: str) -> str:
    return name.replace("%2F", "/").replace("%25", "%")


def is_raw(f: h5py.File) -> bool:
    fmt = f.attrs.get("beamstream_format", "")
    return str(fmt.decode() if isinstance(fmt, bytes) else fmt).startswith("beamstream-raw/")


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(np.maximum(counts, 0), out=out[1:])
    return out


class _Blob:
    """One source's msgpack pieces (metadata or plain values), all loaded into memory."""

    def __init__(self, group: h5py.Group, n: int):
        self.counts = group["count"][:n]
        self.offsets = _offsets(self.counts)
        self.bytes = group["bytes"][: self.offsets[-1]].tobytes()

    def get(self, pos: int) -> dict[str, Any] | None:
        if self.counts[pos] < 0:
            return None
        piece = self.bytes[self.offsets[pos] : self.offsets[pos + 1]]
        if len(piece) != self.counts[pos]:
            raise ValueError("truncated msgpack piece")
        return msgpack.unpackb(piece, raw=False, strict_map_key=False)


def _map_file(path: Path) -> mmap.mmap | None:
    """The whole file mapped read-only (None where mapping is not possible)."""
    try:
        with open(path, "rb") as fh:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None


def _unfiltered(ds: h5py.Dataset) -> bool:
    try:
        return ds.id.get_create_plist().get_nfilters() == 0
    except Exception:  # an odd dataset: read it through HDF5
        return False


class _Array:
    def __init__(self, group: h5py.Group, n: int, mapped: mmap.mmap | None = None):
        self.data = group["data"]
        self.mapped = mapped if _unfiltered(self.data) else None
        self.counts = group["count"][:n]
        self.offsets = _offsets(self.counts)
        self.ndim = int(self.data.attrs.get("ndim", self.data.ndim))
        self.key = str(self.data.attrs["key"])
        # recordings since the checksum was added carry a CRC-32 per train: verified on reading
        has_crc = self.data.attrs.get("checksum") == "crc32" and "crc" in group
        self.crcs = group["crc"][:n] if has_crc else None
        dims = self.data.attrs.get("dims")
        self.dims = tuple(from_json(dims)) if dims is not None else None

    def get(self, pos: int) -> np.ndarray | None:
        c = int(self.counts[pos])
        if c < 0:
            return None
        lo = int(self.offsets[pos])
        if lo + c > self.data.shape[0]:
            raise ValueError(f"array {self.key!r} truncated")
        arr = self._from_map(lo, c)
        if arr is None:
            arr = (
                self.data[lo : lo + c]
                if c
                else np.zeros((0, *self.data.shape[1:]), self.data.dtype)
            )
        if self.crcs is not None and checksum(arr) != int(self.crcs[pos]):
            raise ValueError(f"array {self.key!r}: checksum mismatch (corrupt data)")
        return arr.reshape(()) if self.ndim == 0 else arr

    def _from_map(self, lo: int, c: int) -> np.ndarray | None:
        """Rows that fill exactly one stored chunk, as a zero-copy view of the mapped file.

        The recorder writes one train per chunk, uncompressed by default: replaying then sends
        the bytes straight from the page cache, without reading them into memory first.
        """
        ds = self.data
        if self.mapped is None or c == 0 or ds.chunks is None or ds.chunks[0] != c or lo % c:
            return None
        try:
            info = ds.id.get_chunk_info_by_coord((lo,) + (0,) * (ds.ndim - 1))
        except (KeyError, ValueError, RuntimeError):
            return None
        nbytes = c * int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
        off = info.byte_offset
        if (
            info.filter_mask
            or info.size != nbytes
            or off is None
            or off + nbytes > len(self.mapped)
        ):
            return None
        arr = np.frombuffer(self.mapped, ds.dtype, c * int(np.prod(ds.shape[1:])), off)
        return arr.reshape((c, *ds.shape[1:]))


class RawReader(Reader):
    """Read a raw recording back as the trains that were recorded (identical content).

    Parameters
    ----------
    path
        A file written by `beamstream.sinks.recorder.RawWriter` / the ``raw`` sink.
    trains, include
        Selection (see `Reader`); unselected arrays are not read at all.
    """

    format = "raw"
    detect_order = 1

    @classmethod
    def can_open(cls, path: Path, h5: Any = None) -> bool:
        return h5 is not None and is_raw(h5)

    def __init__(
        self,
        path: str | Path,
        trains: str | TrainRange | None = None,
        include: Sequence[str | Include] | None = None,
    ):
        super().__init__(path, trains, include)
        self._f = open_h5(self.path)
        try:
            if not is_raw(self._f) or "index/train_id" not in self._f:
                raise FormatError(
                    f"{self.path}: not a beamstream raw recording (expected attribute "
                    f"beamstream_format={RAW_FORMAT!r} and /index/train_id)"
                )
            self._open()
        except (KeyError, TypeError, AttributeError) as e:  # damaged metadata
            self._f.close()
            raise FormatError(
                f"{self.path}: corrupt raw recording ({type(e).__name__}: {e}); a file missing "
                "part of its layout cannot be replayed"
            ) from None
        except BaseException:
            self._f.close()
            raise

    def _open(self) -> None:
        f = self._f
        self._map = _map_file(self.path)
        lengths = [len(f["index/train_id"]), len(f["index/timestamp"])]
        sources = f.get("sources", {})
        for sg in sources.values():
            lengths += [len(sg["meta/count"]), len(sg["plain/count"])]
            for ag in sg.get("arrays", {}).values():
                lengths += [len(ag["count"])] + ([len(ag["crc"])] if "crc" in ag else [])
        n = min(lengths)  # a killed writer may have extended some datasets only
        self.train_ids = f["index/train_id"][:n].astype(np.uint64)  # train ids are unsigned 64-bit
        self.timestamps = f["index/timestamp"][:n]
        self._sources: dict[str, tuple[_Blob, _Blob, list[_Array]]] = {}
        for name, sg in sources.items():
            src = _unname(name)
            if not wanted_source(self.includes, src):
                continue
            arrays = [_Array(ag, n, self._map) for ag in sg.get("arrays", {}).values()]
            arrays = [a for a in arrays if wanted(self.includes, src, a.key)]
            self._sources[src] = (_Blob(sg["meta"], n), _Blob(sg["plain"], n), arrays)

    def _read(self, pos: int) -> Train | None:
        data: dict[str, dict[str, Any]] = {}
        meta: dict[str, dict[str, Any]] = {}
        dims: dict[str, dict[str, tuple[str, ...]]] = {}
        for src, (mblob, pblob, arrays) in self._sources.items():
            m = mblob.get(pos)
            if m is None:
                continue
            values = pblob.get(pos) or {}
            for a in arrays:
                arr = a.get(pos)
                if arr is not None:
                    values[a.key] = arr
                    if a.dims:
                        dims.setdefault(src, {})[a.key] = a.dims
            data[src] = values
            meta[src] = m
        if not data:
            return None
        ts = float(self.timestamps[pos])
        return Train(int(self.train_ids[pos]), None if np.isnan(ts) else ts, data, meta, dims)

    def close(self) -> None:
        self._f.close()
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # trains still in use keep the mapping alive until collected
                pass
