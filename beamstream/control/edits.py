"""Common edits as config changes: regions of interest, a pixel mask, the usual settings.

The dashboard's controls build their changes here, so a drawn ROI or an edited mask goes through
the same validation and version log as a change sent by ``beamstream ctl``.
"""

from __future__ import annotations

import tomllib
from typing import Any

import numpy as np
import tomli_w

from beamstream.control.patch import Change
from beamstream.processors.base import Transform
from beamstream.processors.registry import RegistryError, resolve

__all__ = [
    "roi_change",
    "mask_change",
    "settings_change",
    "find_processor",
    "current_rois",
    "roi_from_geometry",
    "outline",
]


def find_processor(raw: dict[str, Any], type_name: str) -> dict[str, Any] | None:
    """The first processor table of ``type_name`` in a raw config."""
    for table in raw.get("processors", []):
        if table.get("type") == type_name:
            return table
    return None


def _is_transform(type_name: str) -> bool:
    try:
        return issubclass(resolve(type_name), Transform)
    except RegistryError:
        return False


def _insert(
    raw: dict[str, Any], table: dict[str, Any], first: bool, client: str, note: str
) -> Change:
    procs = raw.setdefault("processors", [])
    if first:
        at = 0
    else:  # after the last transform: transforms come before the accumulators
        at = 0
        for i, t in enumerate(procs):
            if _is_transform(str(t.get("type", ""))):
                at = i + 1
    procs.insert(at, table)
    return Change(toml=tomli_w.dumps(raw), client=client, note=note)


def current_rois(text: str) -> list[dict[str, Any]]:
    """The regions of the config's ``roi`` processor (none: an empty list)."""
    table = find_processor(tomllib.loads(text), "roi")
    return list(table.get("rois", [])) if table else []


def roi_change(text: str, rois: list[dict[str, Any]], client: str = "dashboard") -> Change:
    """Set the regions of interest (adding a ``roi`` processor when there is none)."""
    raw = tomllib.loads(text)
    note = "ROIs: " + (", ".join(str(r.get("name")) for r in rois) or "none")
    table = find_processor(raw, "roi")
    if table is not None:
        name = table.get("name", "roi")
        return Change(set={f"processors.{name}.rois": rois}, client=client, note=note)
    return _insert(raw, {"type": "roi", "name": "rois", "rois": rois}, False, client, note)


def mask_change(text: str, path: str, client: str = "dashboard") -> Change:
    """Use the pixel mask in ``path`` (adding a ``pixel_mask`` processor first when needed)."""
    raw = tomllib.loads(text)
    note = f"pixel mask {path}"
    table = find_processor(raw, "pixel_mask")
    if table is not None:
        name = table.get("name", "pixel_mask")
        return Change(set={f"processors.{name}.mask": path}, client=client, note=note)
    table = {"type": "pixel_mask", "name": "pixel_mask", "mask": path}
    return _insert(raw, table, True, client, note)


def settings_change(
    text: str,
    *,
    pattern: list[str] | None = None,
    threshold: float | None = None,
    stepsize: float | None = None,
    client: str = "dashboard",
) -> Change:
    """Frame pattern, the first monitor rule's minimum and the scan step, where given."""
    raw = tomllib.loads(text)
    sets: dict[str, Any] = {}
    selector = find_processor(raw, "frame_selector")
    if selector is not None:
        name = selector.get("name", "frame_selector")
        if pattern is not None and pattern != selector.get("pattern"):
            sets[f"processors.{name}.pattern"] = pattern
        rules = selector.get("rules") or []
        if threshold is not None and rules and rules[0].get("min") != threshold:
            sets[f"processors.{name}.rules[0].min"] = threshold
    scan = raw.get("scan")
    if stepsize is not None and scan is not None and scan.get("stepsize") != stepsize:
        sets["scan.stepsize"] = stepsize
    return Change(set=sets, client=client)


def roi_from_geometry(geometry: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A region table from a Bokeh selection geometry (``rect`` or ``poly``), in pixels."""
    kind = geometry.get("type")
    if kind == "rect":
        x0, x1 = sorted((geometry["x0"], geometry["x1"]))
        y0, y1 = sorted((geometry["y0"], geometry["y1"]))
        box = [max(int(np.floor(x0)), 0), int(np.ceil(x1)), max(int(np.floor(y0)), 0)]
        box.append(int(np.ceil(y1)))
        return {"name": name, "box": box} if box[1] > box[0] and box[3] > box[2] else None
    if kind == "poly":
        xs, ys = list(geometry.get("x", [])), list(geometry.get("y", []))
        if len(xs) < 3:
            return None
        return {
            "name": name,
            "polygon": [[round(x, 2), round(y, 2)] for x, y in zip(xs, ys, strict=False)],
        }
    return None


def outline(roi: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The x and y vertices of a region (a box's four corners)."""
    if "box" in roi:
        x0, x1, y0, y1 = roi["box"]
        return [x0, x1, x1, x0], [y0, y0, y1, y1]
    pts = roi["polygon"]
    return [p[0] for p in pts], [p[1] for p in pts]
