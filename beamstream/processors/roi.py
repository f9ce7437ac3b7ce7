"""`RegionsOfInterest`: named detector regions (boxes, polygons) as per-train records.

For every region and train the records get, per pattern slot over the accepted frames,
``<name>.<region>.sum`` (the summed pixel values) and ``<name>.<region>.mean`` (the mean pixel
value; NaN pixels are neither summed nor counted). Nothing is accumulated, so regions can be
added, moved or removed while a run goes on without disturbing its states
(``records_only``). Images of modular detectors ``(frame, module, y, x)`` are addressed with the
modules stacked along y, as the dashboard shows them.

Config::

    [[processors]]
    type = "roi"
    name = "rois"
    rois = [
      { name = "peak", box = [100, 140, 20, 60] },           # x0, x1, y0, y1 (end excluded)
      { name = "ring", polygon = [[10, 10], [50, 12], [30, 40]] },   # (x, y) vertices
    ]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from beamstream.processors.base import TrainView, Transform
from beamstream.processors.params import ParamError

__all__ = ["RegionsOfInterest", "Region", "polygon_mask"]

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
MAX_REGIONS = 64
MAX_VERTICES = 256


def polygon_mask(vertices: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """Pixels ``(ny, nx)`` whose centres lie inside the polygon (even-odd rule)."""
    y, x = np.mgrid[0:ny, 0:nx]
    px, py = x.ravel() + 0.5, y.ravel() + 0.5
    inside = np.zeros(px.shape, dtype=bool)
    vx, vy = vertices[:, 0], vertices[:, 1]
    for i in range(len(vertices)):
        x1, y1, x2, y2 = vx[i - 1], vy[i - 1], vx[i], vy[i]
        if y1 == y2:
            continue
        crosses = (py >= min(y1, y2)) & (py < max(y1, y2))
        xc = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (px < xc)
    return inside.reshape(ny, nx)


class Region:
    """One named region: a box ``[x0, x1, y0, y1]`` or a polygon of ``(x, y)`` vertices."""

    def __init__(self, index: int, table: Any):
        where = f"rois[{index}]"
        if not isinstance(table, dict):
            raise ParamError(where, "a table {name, box} or {name, polygon}", table)
        unknown = sorted(set(table) - {"name", "box", "polygon"})
        if unknown:
            raise ParamError(f"{where}.{unknown[0]}", "one of name, box, polygon", "unknown key")
        name = table.get("name")
        if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS:
            raise ParamError(f"{where}.name", "a name of letters, digits, _ and -", name)
        self.name = name
        self.box: tuple[int, int, int, int] | None = None
        self.polygon: np.ndarray | None = None
        if ("box" in table) == ("polygon" in table):
            raise ParamError(where, "either box or polygon", sorted(table))
        if "box" in table:
            box = table["box"]
            if (
                not isinstance(box, list)
                or len(box) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)
                or box[1] <= box[0]
                or box[3] <= box[2]
                or min(box) < 0
            ):
                raise ParamError(f"{where}.box", "[x0, x1, y0, y1] integers, x0 < x1, y0 < y1", box)
            self.box = (box[0], box[1], box[2], box[3])
        else:
            poly = table["polygon"]
            ok = isinstance(poly, list) and 3 <= len(poly) <= MAX_VERTICES
            ok = ok and all(
                isinstance(p, list)
                and len(p) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
                for p in poly
            )
            if not ok:
                raise ParamError(f"{where}.polygon", f"3 to {MAX_VERTICES} [x, y] vertices", poly)
            self.polygon = np.asarray(poly, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        if self.box is not None:
            return {"name": self.name, "box": list(self.box)}
        return {"name": self.name, "polygon": self.polygon.tolist()}


class RegionsOfInterest(Transform):
    """Per-train sums and means of named regions, per slot (see the module docstring).

    Parameters
    ----------
    rois
        The regions: ``{name, box = [x0, x1, y0, y1]}`` or ``{name, polygon = [[x, y], ...]}``.
    slots
        The frame-pattern slots (set by the pipeline).
    name
        Prefix of the record names.
    """

    #: the regions only add records: changing them leaves every accumulated state valid
    records_only: ClassVar[bool] = True
    live_params: ClassVar[frozenset[str]] = frozenset({"rois"})

    def __init__(
        self, rois: Sequence[Any] = (), slots: Sequence[str] = ("image",), name: str = "rois"
    ):
        if not isinstance(rois, list | tuple) or len(rois) > MAX_REGIONS:
            raise ParamError("rois", f"a list of at most {MAX_REGIONS} regions", rois)
        self.regions = [Region(i, t) for i, t in enumerate(rois)]
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names):
            raise ParamError("rois", "distinct region names", names)
        self.slots = None  # does not set the pattern
        self._slots = tuple(slots)
        self.name = name
        self._masks: dict[tuple[int, int], list[np.ndarray | None]] = {}

    def describe(self) -> str:
        return f"regions of interest {', '.join(r.name for r in self.regions) or '(none)'}"

    def _pixels(self, ny: int, nx: int) -> list[np.ndarray | None]:
        """Per region: flat pixel indices of a polygon (None for a box), cached per shape."""
        key = (ny, nx)
        if key not in self._masks:
            self._masks[key] = [
                None if r.polygon is None else np.flatnonzero(polygon_mask(r.polygon, ny, nx))
                for r in self.regions
            ]
        return self._masks[key]

    def __call__(self, view: TrainView) -> TrainView:
        if view.frames is None or not self.regions:
            return view
        frames = view.frames
        images = frames.reshape(frames.shape[0], -1, frames.shape[-1])  # modules along y
        n, ny, nx = images.shape
        slot = view.frame_slot if view.frame_slot is not None else np.zeros(n, np.int64)
        acc = np.flatnonzero(slot >= 0)
        nslots = len(view.slots)
        for region, pix in zip(self.regions, self._pixels(ny, nx), strict=True):
            if region.box is not None:
                x0, x1, y0, y1 = region.box
                part = images[acc, y0:y1, x0:x1].reshape(len(acc), -1)
            else:
                part = images.reshape(n, -1)[acc][:, pix]
            part = part.astype(np.float64, copy=False)
            finite = np.isfinite(part)
            per_frame = np.where(finite, part, 0.0).sum(axis=1)
            counts = finite.sum(axis=1)
            sums = np.bincount(slot[acc], weights=per_frame, minlength=nslots)[:nslots]
            npix = np.bincount(slot[acc], weights=counts, minlength=nslots)[:nslots]
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(npix > 0, sums / np.maximum(npix, 1), np.nan)
            view.records[f"{self.name}.{region.name}.sum"] = sums
            view.records[f"{self.name}.{region.name}.mean"] = mean
        return view
