"""Scan positions of images: from image ``user_data``, from a positions table, from bluesky.

Every lookup returns ``{motor: value}`` or the reason no position was found; unmatched images are
counted by reason (``positions:<reason>``) and get NaN positions, which the scan map counts as
unplaced instead of guessing.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .messages import Image, SeriesStart

__all__ = ["PositionLookup", "UserDataPositions", "TablePositions", "load_table"]


class PositionLookup(Protocol):
    """Where positions come from: ``lookup(series, image) -> (positions, reason)``."""

    motors: tuple[str, ...]

    def lookup(
        self, series: SeriesStart, image: Image
    ) -> tuple[dict[str, float] | None, str | None]: ...


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


class UserDataPositions:
    """Motor positions in each image's ``user_data`` map (SIMPLON ``image_appendix``).

    Parameters
    ----------
    motors
        The ``user_data`` keys to read (dotted paths into nested maps, e.g. ``"scan.x"``).
    """

    def __init__(self, motors: Sequence[str]):
        if not motors:
            raise ValueError("positions.motors: expected at least one user_data key")
        self.motors = tuple(motors)

    def lookup(
        self, series: SeriesStart, image: Image
    ) -> tuple[dict[str, float] | None, str | None]:
        if not isinstance(image.user_data, Mapping):
            return None, "no_user_data"
        out = {}
        for m in self.motors:
            v: Any = image.user_data
            for part in m.split("."):
                v = v.get(part) if isinstance(v, Mapping) else None
            x = _number(v)
            if x is None or not math.isfinite(x):
                return None, "user_data_missing_key"
            out[m] = x
        return out, None


def load_table(path: str | Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(image_ids, {motor: values})`` from a CSV (header ``image_id,<motor>,...``) or NPY.

    An NPY table is a structured array with an ``image_id`` field, or a 2-D float array whose
    first column is the image id and the others are motors ``m1``, ``m2``, ...

    Raises
    ------
    ValueError
        Naming the file and what is wrong (missing column, non-numbers, duplicate ids).
    """
    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            ids, cols = _npy_table(np.load(p, allow_pickle=False), p)
        else:
            ids, cols = _csv_table(p)
    except OSError as e:
        raise ValueError(f"positions.table: cannot read {p}: {e.strerror or e}") from None
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"positions.table: {p}: duplicate image ids")
    return ids, cols


def _csv_table(p: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with p.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "image_id" not in rows[0]:
        raise ValueError(f"positions.table: {p}: expected a header with an image_id column")
    header = [h.strip() for h in rows[0]]
    try:
        values = np.array([[float(x) for x in r] for r in rows[1:] if r], dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"positions.table: {p}: {e}") from None
    if values.ndim != 2 or values.shape[1] != len(header):
        raise ValueError(f"positions.table: {p}: rows must have {len(header)} numbers")
    i = header.index("image_id")
    cols = {h: values[:, j] for j, h in enumerate(header) if j != i}
    return values[:, i].astype(np.int64), cols


def _npy_table(a: np.ndarray, p: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if a.dtype.names:
        if "image_id" not in a.dtype.names:
            raise ValueError(f"positions.table: {p}: no image_id field")
        cols = {n: a[n].astype(np.float64) for n in a.dtype.names if n != "image_id"}
        return a["image_id"].astype(np.int64), cols
    if a.ndim != 2 or a.shape[1] < 2:
        raise ValueError(f"positions.table: {p}: expected (n, 1 + motors), got {a.shape}")
    cols = {f"m{j}": a[:, j].astype(np.float64) for j in range(1, a.shape[1])}
    return a[:, 0].astype(np.int64), cols


class TablePositions:
    """Positions looked up by image id in a table (`load_table`), the same for every series."""

    def __init__(self, path: str | Path):
        ids, cols = load_table(path)
        self.motors = tuple(cols)
        self._rows = {int(i): k for k, i in enumerate(ids)}
        self._cols = cols

    def lookup(
        self, series: SeriesStart, image: Image
    ) -> tuple[dict[str, float] | None, str | None]:
        k = self._rows.get(image.image_id)
        if k is None:
            return None, "not_in_table"
        return {m: float(c[k]) for m, c in self._cols.items()}, None
