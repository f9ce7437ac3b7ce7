"""`RecordsWriter`: per-train records (dicts of scalars and arrays) as extendible HDF5 columns.

Each record key becomes a dataset ``/records/<key>`` with one row per train (nested dicts are
flattened to ``outer.inner``). A column is created the first time its key has a value: its dtype
and row shape come from the values of that first batch (the largest shape when they differ).
Values of a later, different shape are zero/NaN padded or cropped into the row; the true shape of
each row is then kept in ``/records_shape/<key>`` and the event is counted (``reshaped``).
Missing values hold the fill value: NaN for floats, 0 for integers and booleans, ``b""`` for
strings. Rows are aligned across columns: row ``i`` of every column is the ``i``-th record.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from beamstream.sinks.appendfile import AppendFile
from beamstream.sinks.h5layout import h5name

__all__ = ["RecordsWriter", "flatten_record"]

log = logging.getLogger(__name__)

GROUP = "records"
SHAPES = "records_shape"
_STR_LEN = 64


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


def _column_type(values: Sequence[Any]) -> tuple[tuple[int, ...], np.dtype] | None:
    """Row shape and dtype for a column's first values (None: nothing storable)."""
    arrays = []
    for v in values:
        if v is None:
            continue
        if isinstance(v, str | bytes):
            return (), np.dtype(f"S{_STR_LEN}")
        a = np.asarray(v)
        if a.dtype.kind not in "biufc":
            return None
        arrays.append(a)
    if not arrays:
        return None
    ndim = max(a.ndim for a in arrays)
    shape = tuple(max((a.shape[i] if a.ndim == ndim else 0) for a in arrays) for i in range(ndim))
    dtype = np.result_type(*[a.dtype for a in arrays])
    if dtype.kind == "b" and any(a.dtype.kind != "b" for a in arrays):
        dtype = np.dtype(np.int64)
    return shape, dtype


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
        self.columns: dict[str, tuple[str, tuple[int, ...], np.dtype]] = {}
        self.unsupported: set[str] = set()
        #: counted problems: ``reshaped:<key>``, ``cropped:<key>``, ``uncastable:<key>``
        self.warnings: collections.Counter[str] = collections.Counter()

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append one row per record and flush."""
        if not records:
            return
        flat = [flatten_record(r) for r in records]
        self._create_new_columns(flat)
        n = len(flat)
        for key, (name, shape, dtype) in self.columns.items():
            block = np.full((n, *shape), _fill(dtype), dtype=dtype)
            shapes = None
            for i, rec in enumerate(flat):
                value = rec.get(key)
                if value is None:
                    continue
                shapes = self._put(block, i, key, value, shape, dtype, shapes, n)
            self.file.extend(name, block)
            if shapes is not None or f"{SHAPES}/{h5name(key)}" in self.file:
                self._write_shapes(key, shape, shapes, n)
        self.rows += n
        self.file.flush()

    # -- internals ------------------------------------------------------------------------------
    def _create_new_columns(self, flat: list[dict[str, Any]]) -> None:
        seen: dict[str, list[Any]] = {}
        for rec in flat:
            for key, value in rec.items():
                if key not in self.columns and key not in self.unsupported:
                    seen.setdefault(key, []).append(value)
        specs = {}
        for key, values in seen.items():
            kind = _column_type(values)
            if kind is None:
                if any(v is not None for v in values):
                    self.unsupported.add(key)
                    log.warning(
                        "record key %r: values of type %s are not stored",
                        key,
                        type(next(v for v in values if v is not None)).__name__,
                    )
                continue
            shape, dtype = kind
            name = f"{GROUP}/{h5name(key)}"
            self.columns[key] = (name, shape, dtype)
            specs[name] = (shape, dtype, _fill(dtype))
        self.file.create(specs, rows=self.rows)

    def _put(self, block, i, key, value, shape, dtype, shapes, n):  # noqa: ANN001, ANN202
        if isinstance(value, str):
            value = value.encode()[:_STR_LEN]
        try:
            a = np.asarray(value).astype(dtype, casting="unsafe") if dtype.kind != "S" else value
        except (TypeError, ValueError):
            self.warnings[f"uncastable:{key}"] += 1
            return shapes
        a_shape = np.shape(a)
        if a_shape == shape:
            block[i] = a
            return shapes
        if len(a_shape) != len(shape):
            self.warnings[f"reshaped:{key}"] += 1
            return shapes
        if shapes is None:
            shapes = np.tile(np.asarray(shape, np.int64), (n, 1))
        shapes[i] = a_shape
        if any(s > m for s, m in zip(a_shape, shape, strict=True)):
            self.warnings[f"cropped:{key}"] += 1
            if self.warnings[f"cropped:{key}"] == 1:
                log.warning("record %r: shape %s cropped to %s", key, a_shape, shape)
        else:
            self.warnings[f"reshaped:{key}"] += 1
        region = tuple(slice(0, min(s, m)) for s, m in zip(a_shape, shape, strict=True))
        block[(i, *region)] = a[region]
        return shapes

    def _write_shapes(self, key: str, shape: tuple[int, ...], shapes: Any, n: int) -> None:
        name = f"{SHAPES}/{h5name(key)}"
        if name not in self.file:
            self.file.create({name: ((len(shape),), np.dtype(np.int64), -1)}, rows=self.rows)
            # rows before this one had the column's shape
            self.file.file[name][: self.rows] = np.asarray(shape, np.int64)
        if shapes is None:
            shapes = np.tile(np.asarray(shape, np.int64), (n, 1))
        self.file.extend(name, shapes)
