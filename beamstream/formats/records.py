"""`RecordsWriter`: per-train records (dicts of scalars and arrays) as extendible HDF5 columns.

Nested dicts are flattened to ``outer.inner`` keys. A column is created the first time its key
has a value, and its first value decides its kind:

* **scalar** (numbers, booleans, strings): ``/records/<key>`` holds one value per row. Missing
  values hold the fill value: NaN for floats, 0 for integers and booleans, ``b""`` for strings.
* **ragged** (arrays with ``ndim >= 1``): ``/records/<key>`` holds the values of all rows
  concatenated along the first axis, shape ``(total, *rest)``, and ``/records_index/<key>`` one
  ``(start, count)`` pair per row (int64, shape ``(rows, 2)``): row ``i`` is
  ``values[start_i : start_i + count_i]``. A missing value is a row of count 0. Any first-axis
  length is stored whole (hit lists, per-frame arrays of trains of any frame count); the trailing
  dims ``rest`` are those of the column's first value, and a later value with other trailing dims
  (or another number of dims) is skipped: its row has count 0, the event is counted
  (``mismatched:<key>``) and logged (rate limited).

Rows are aligned across columns: row ``i`` of every column (index) is the ``i``-th record.

Crash safety and SWMR: each `RecordsWriter.append` writes the ragged values first and flushes,
then the row columns and indices, and flushes again. A reader (live with SWMR, or after a
``kill -9``) trusts only the indices: every pair it can see points at values already in the file,
values past the last pair are ignored, and rows are complete up to the shortest column
(`read_columns` does all that).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from beamstream.formats.appendfile import AppendFile
from beamstream.formats.h5layout import h5name

__all__ = ["RecordsWriter", "flatten_record", "read_columns", "RaggedRows"]

log = logging.getLogger(__name__)

GROUP = "records"
INDEX = "records_index"
#: the fixed-row layout of older files (before ragged columns) kept each row's true shape here
SHAPES = "records_shape"
_STR_LEN = 64
#: columns whose dtype does not depend on their first values: train ids are uint64
_FIXED = {"train_id": np.dtype(np.uint64)}
_RAGGED_CHUNK_BYTES = 1 << 20
_RAGGED_CHUNK_MAX = 1 << 16


def flatten_record(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and tuples become arrays."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_record(value, name + "."))
        elif isinstance(value, list | tuple):
            try:
                out[name] = np.asarray(value)
            except ValueError:
                out[name] = None
        else:
            out[name] = value
    return out


def _fill(dtype: np.dtype) -> Any:
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "S":
        return b""
    return 0


@dataclass(frozen=True)
class _Column:
    name: str  # the values dataset
    dtype: np.dtype
    rest: tuple[int, ...] | None  # None: scalar column; else the trailing dims of a ragged one
    index: str = ""  # the (start, count) dataset of a ragged column


def _column_type(values: Sequence[Any]) -> tuple[tuple[int, ...] | None, np.dtype] | None:
    """``(rest, dtype)`` for a column's first values (rest None: scalar; None: not storable).

    The first value decides scalar or ragged and the trailing dims; the dtype is that of all
    first-batch values of that shape together.
    """
    first = next((v for v in values if v is not None), None)
    if first is None:
        return None
    if isinstance(first, str | bytes):
        return None, np.dtype(f"S{_STR_LEN}")
    a0 = np.asarray(first)
    if a0.dtype.kind not in "biufc":
        return None
    rest = None if a0.ndim == 0 else a0.shape[1:]
    dtypes = []
    for v in values:
        if v is None or isinstance(v, str | bytes):
            continue
        a = np.asarray(v)
        if a.dtype.kind in "biufc" and (a.ndim == 0 if rest is None else a.shape[1:] == rest):
            if a.ndim == a0.ndim:
                dtypes.append(a.dtype)
    dtype = np.result_type(*dtypes)
    if dtype.kind == "b" and any(d.kind != "b" for d in dtypes):
        dtype = np.dtype(np.int64)
    return rest, dtype


def _ragged_chunk(rest: tuple[int, ...], dtype: np.dtype) -> int:
    row_bytes = max(1, int(np.prod(rest, dtype=np.int64)) * dtype.itemsize)
    return max(1, min(_RAGGED_CHUNK_MAX, _RAGGED_CHUNK_BYTES // row_bytes))


class RecordsWriter:
    """Append batches of per-train records to an `AppendFile`.

    Parameters
    ----------
    file
        The (SWMR) file the columns go to.
    """

    def __init__(self, file: AppendFile):
        self.file = file
        self.rows = 0
        self.columns: dict[str, _Column] = {}
        self.unsupported: set[str] = set()
        #: counted problems: ``mismatched:<key>`` (a value of another shape than its column's:
        #: skipped), ``uncastable:<key>`` (not convertible to the column's dtype: skipped)
        self.warnings: collections.Counter[str] = collections.Counter()
        self._ends: dict[str, int] = {}  # values written per ragged column

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append one row per record and flush."""
        if not records:
            return
        flat = [flatten_record(r) for r in records]
        self._create_new_columns(flat)
        n = len(flat)
        # 1. the ragged values, made durable before any index points at them
        indices: dict[str, np.ndarray] = {}
        wrote = False
        for key, col in self.columns.items():
            if col.rest is None:
                continue
            idx = np.zeros((n, 2), np.int64)
            start = self._ends[key]
            parts = []
            for i, rec in enumerate(flat):
                a = self._ragged(key, col, rec.get(key))
                idx[i, 0] = start
                if a is not None and len(a):
                    idx[i, 1] = len(a)
                    start += len(a)
                    parts.append(a)
            if parts:
                self.file.extend(col.name, np.concatenate(parts))
                wrote = True
            self._ends[key] = start
            indices[key] = idx
        if wrote:
            self.file.flush()
        # 2. the rows: indices and scalar columns
        for key, col in self.columns.items():
            if col.rest is not None:
                self.file.extend(col.index, indices[key])
                continue
            block = np.full(n, _fill(col.dtype), dtype=col.dtype)
            for i, rec in enumerate(flat):
                value = self._scalar(key, col, rec.get(key))
                if value is not None:
                    block[i] = value
            self.file.extend(col.name, block)
        self.rows += n
        self.file.flush()

    # -- internals ------------------------------------------------------------------------------
    def _create_new_columns(self, flat: list[dict[str, Any]]) -> None:
        seen: dict[str, list[Any]] = {}
        for rec in flat:
            for key, value in rec.items():
                if key not in self.columns and key not in self.unsupported:
                    seen.setdefault(key, []).append(value)
        values_specs: dict[str, tuple[Any, ...]] = {}
        row_specs: dict[str, tuple[Any, ...]] = {}
        attrs: dict[str, dict[str, Any]] = {}
        for key, values in seen.items():
            kind = (None, _FIXED[key]) if key in _FIXED else _column_type(values)
            if kind is None:
                if any(v is not None for v in values):
                    self.unsupported.add(key)
                    log.warning(
                        "record key %r: values of type %s are not stored",
                        key,
                        type(next(v for v in values if v is not None)).__name__,
                    )
                continue
            rest, dtype = kind
            name = f"{GROUP}/{h5name(key)}"
            if rest is None:
                self.columns[key] = _Column(name, dtype, None)
                row_specs[name] = ((), dtype, _fill(dtype))
                continue
            index = f"{INDEX}/{h5name(key)}"
            self.columns[key] = _Column(name, dtype, rest, index)
            self._ends[key] = 0
            values_specs[name] = (rest, dtype, _fill(dtype), _ragged_chunk(rest, dtype))
            row_specs[index] = ((2,), np.dtype(np.int64), 0)  # back-filled rows: count 0
            attrs[name] = {"index": "/" + index}
            attrs[index] = {"values": "/" + name, "columns": "start,count"}
        if self.rows == 0:  # one SWMR suspension when nothing needs back-filling
            self.file.create({**values_specs, **row_specs}, rows=0, attrs=attrs)
        else:
            self.file.create(values_specs, rows=0, attrs=attrs)
            self.file.create(row_specs, rows=self.rows, attrs=attrs)

    def _count(self, what: str, key: str, msg: str, *args: Any) -> None:
        c = self.warnings[f"{what}:{key}"] = self.warnings[f"{what}:{key}"] + 1
        if str(c).rstrip("0") == "1":  # the 1st, 10th, 100th, ...: rate limited
            log.warning("record %r: " + msg + " (%d so far)", key, *args, c)

    def _scalar(self, key: str, col: _Column, value: Any) -> Any:
        if value is None:
            return None
        if col.dtype.kind == "S":
            if isinstance(value, str):
                value = value.encode()
            if isinstance(value, bytes):
                return value[:_STR_LEN]
        try:
            a = np.asarray(value)
            if a.dtype.kind not in "biufcS":
                raise TypeError(a.dtype)
            a = a.astype(col.dtype, casting="unsafe")
        except (TypeError, ValueError):
            self._count("uncastable", key, "value of type %s not stored", type(value).__name__)
            return None
        if a.shape != ():
            self._count("mismatched", key, "value of shape %s skipped (a scalar column)", a.shape)
            return None
        return a

    def _ragged(self, key: str, col: _Column, value: Any) -> np.ndarray | None:
        if value is None:
            return None
        try:
            if isinstance(value, str | bytes):
                raise TypeError(type(value))
            a = np.asarray(value)
            if a.dtype.kind not in "biufc":
                raise TypeError(a.dtype)
            a = a.astype(col.dtype, casting="unsafe", copy=False)
        except (TypeError, ValueError):
            self._count("uncastable", key, "value of type %s not stored", type(value).__name__)
            return None
        if a.ndim == 0 or a.shape[1:] != col.rest:
            self._count(
                "mismatched",
                key,
                "value of shape %s skipped (trailing dims must be %s)",
                a.shape,
                col.rest,
            )
            return None
        return a


# -- reading ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RaggedRows:
    """One ragged column as read: row ``i`` is ``values[offsets[i] : offsets[i + 1]]``."""

    values: np.ndarray
    offsets: np.ndarray  # int64, len(rows) + 1, non-decreasing, offsets[0] == 0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def rows(self) -> np.ndarray:
        """A 1-D object array of the per-row arrays (views into ``values``)."""
        out = np.empty(len(self), dtype=object)
        for i in range(len(self)):
            out[i] = self.row(i)
        return out

    def take(self, n: int) -> RaggedRows:
        """The first ``n`` rows."""
        offsets = self.offsets[: n + 1]
        return RaggedRows(self.values[: offsets[-1]], offsets)


def _unname(name: str) -> str:
    return name.replace("%2F", "/").replace("%25", "%")


def read_columns(
    f: h5py.File, max_rows: int | None = None
) -> tuple[dict[str, np.ndarray | RaggedRows], int]:
    """``({key: column}, rows)`` of an open records file, cut to its complete rows (and to
    ``max_rows``: the rows a results file's states hold, see `HDF5Sink`).

    Scalar columns (and fixed-row columns of files written before ragged columns existed) are
    arrays with one row per train; ragged columns are `RaggedRows`. Each index is read before its
    values, and only index pairs pointing at values present are trusted, so a file being written
    (SWMR) or left by a killed writer reads consistently: ``rows`` is the number of rows every
    column has.
    """
    g = f.get(GROUP)
    if g is None:
        return {}, 0
    ig = f.get(INDEX)
    cols: dict[str, np.ndarray | RaggedRows] = {}
    for name, ds in g.items():
        if not isinstance(ds, h5py.Dataset):
            continue
        key = _unname(name)
        if ig is not None and name in ig:
            idx = np.asarray(ig[name][()], np.int64).reshape(-1, 2)  # the index first
            values = ds[()]
            starts, counts = idx[:, 0], idx[:, 1]
            bad = np.flatnonzero((starts + counts > len(values)) | (counts < 0) | (starts < 0))
            n = int(bad[0]) if len(bad) else len(idx)
            starts, counts = starts[:n], counts[:n]
            offsets = np.zeros(n + 1, np.int64)
            np.cumsum(counts, out=offsets[1:])
            used = counts > 0
            base = int(starts[used][0]) if used.any() else 0
            if np.array_equal(starts[used], base + offsets[:-1][used]):  # one contiguous run
                values = values[base : base + offsets[-1]]
            else:  # never written so, but a valid index: gather the rows
                values = np.concatenate(
                    [values[:0]] + [values[s : s + c] for s, c in zip(starts, counts, strict=True)]
                )
            cols[key] = RaggedRows(values, offsets)
        else:
            cols[key] = ds[()]
    rows = min((len(c) for c in cols.values()), default=0)
    if max_rows is not None:
        rows = min(rows, max_rows)
    return {
        k: (c.take(rows) if isinstance(c, RaggedRows) else c[:rows]) for k, c in cols.items()
    }, rows
