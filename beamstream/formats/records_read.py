"""Reading the per-train records of a run: `read_records` concatenates its records files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.formats.h5layout import open_h5
from beamstream.formats.records import RaggedRows, read_columns

__all__ = ["read_records", "records_dataset"]


def read_records(
    paths: Sequence[str | os.PathLike[str]],
    ragged: str = "rows",
    rows: Sequence[int | None] = (),
) -> dict[str, np.ndarray | RaggedRows]:
    """The per-train records of one or more records files, concatenated row by row.

    Scalar columns are 1-D arrays with one value per train (a file without the key: NaN, 0 or
    ``b""``). Ragged columns (array-valued records: hit lists, per-frame values) come as
    ``ragged="rows"`` (default): a 1-D object array with one array per train, of shape
    ``(count, *rest)`` (a train without the value: an empty array); or ``ragged="flat"``: a
    `RaggedRows` ``(values, offsets)``, row ``i`` being ``values[offsets[i]:offsets[i + 1]]``
    (the trailing dims must agree across files). Rows are complete: a file being written or
    left by a killed writer gives the rows all its columns have. ``rows`` (aligned with
    ``paths``, e.g. `ResultsFile.records_rows`) cuts each file to the rows its results hold.
    """
    limits = list(rows) + [None] * (len(paths) - len(rows))
    if ragged not in ("rows", "flat"):
        raise ValueError(f"read_records: ragged must be 'rows' or 'flat', not {ragged!r}")
    parts: list[tuple[dict[str, np.ndarray | RaggedRows], int]] = []
    for p, limit in zip(paths, limits, strict=True):
        if limit == 0 or not Path(p).exists():  # 0: abandoned after a write error
            continue
        with open_h5(p) as f:
            parts.append(read_columns(f, limit))
    protos: dict[str, np.ndarray | RaggedRows] = {}
    for cols, _ in parts:
        for k, v in cols.items():  # ragged in any file: ragged
            if k not in protos or (
                isinstance(v, RaggedRows) and not isinstance(protos[k], RaggedRows)
            ):
                protos[k] = v
    out: dict[str, np.ndarray | RaggedRows] = {}
    for k, proto in protos.items():
        if isinstance(proto, RaggedRows):
            pieces = [_as_ragged(cols.get(k), n, proto) for cols, n in parts]
            if ragged == "rows":
                out[k] = np.concatenate([p.rows() for p in pieces])
            else:
                out[k] = _concat_ragged(k, pieces)
            continue
        chunks = []
        for cols, n in parts:
            v = cols.get(k)
            if v is not None:
                chunks.append(v)
            elif n:
                fill = np.nan if proto.dtype.kind in "fc" else b"" if proto.dtype.kind == "S" else 0
                chunks.append(np.full((n, *proto.shape[1:]), fill, proto.dtype))
        out[k] = np.concatenate(chunks) if chunks else proto
    return out


def _as_ragged(v: np.ndarray | RaggedRows | None, n: int, proto: RaggedRows) -> RaggedRows:
    """One file's part of a ragged column (missing: empty rows; fixed rows of old files: whole)."""
    if isinstance(v, RaggedRows):
        return v
    if v is None:
        return RaggedRows(proto.values[:0], np.zeros(n + 1, np.int64))
    a = np.asarray(v)
    if a.ndim < 2:  # a scalar column in that file: one-element rows
        a = a.reshape(len(a), 1)
    return RaggedRows(a.reshape(-1, *a.shape[2:]), np.arange(len(a) + 1) * a.shape[1])


def _concat_ragged(key: str, pieces: list[RaggedRows]) -> RaggedRows:
    if len(pieces) == 1:
        return pieces[0]
    rests = {p.values.shape[1:] for p in pieces}
    if len(rests) > 1:
        raise ValueError(
            f"records {key!r}: trailing dims differ between files ({sorted(rests)}); "
            "read them with ragged='rows'"
        )
    offsets = [np.zeros(1, np.int64)]
    total = 0
    for p in pieces:
        offsets.append(p.offsets[1:] + total)
        total += int(p.offsets[-1])
    return RaggedRows(np.concatenate([p.values for p in pieces]), np.concatenate(offsets))


def records_dataset(records: dict[str, np.ndarray | RaggedRows]) -> Any:
    """Records (as `read_records` gives them, ``ragged="rows"``) as an ``xarray.Dataset``.

    One row per train along the dim ``train_id`` (its index coordinate, when the records have
    train ids); ``time`` (datetime64, UTC) is a coordinate made from the ``timestamp`` column,
    which stays as it is. Columns of several values per train get extra dims ``<key>_1``, ...
    """
    import xarray as xr

    dim = "train_id" if "train_id" in records else "row"
    data = {}
    for k, v in records.items():
        if k == "train_id":
            continue
        a = np.asarray(v)
        data[k] = xr.Variable((dim, *[f"{k}_{i}" for i in range(1, a.ndim)]), a)
    coords: dict[str, Any] = {}
    if "train_id" in records:
        coords["train_id"] = (
            "train_id",
            np.asarray(records["train_id"]),
            {"long_name": "train id"},
        )
    if "timestamp" in records:
        ts = np.asarray(records["timestamp"], dtype=np.float64)
        ok = np.isfinite(ts)
        times = np.full(len(ts), np.datetime64("NaT"), dtype="datetime64[ns]")
        sec = np.floor(ts[ok])  # whole seconds apart: 1e9 * ts alone loses ~100 ns
        ns = sec.astype(np.int64) * 1_000_000_000 + np.round((ts[ok] - sec) * 1e9).astype(np.int64)
        times[ok] = ns.astype("datetime64[ns]")
        coords["time"] = (dim, times, {"long_name": "train time (UTC)"})
    return xr.Dataset(data, coords=coords)
