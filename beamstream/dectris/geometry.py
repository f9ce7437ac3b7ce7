"""Geometry from the stream: a series' start message fills the q-phi geometry, mask and flat.

A processor whose ``geometry`` is ``"from-stream"`` (or a table with ``from = "stream"`` plus
overrides) gets, from the first series start:

* ``dist`` = ``detector_distance`` [m] or else the z of ``detector_translation`` [m];
* ``poni1 = beam_center_y * pixel_size_y``, ``poni2 = beam_center_x * pixel_size_x`` (beam
  centre in pixels from the detector corner, pyFAI's pixel-edge convention), no rotations;
* ``pixel1 = pixel_size_y``, ``pixel2 = pixel_size_x``, ``shape = (image_size_y, image_size_x)``;
* ``wavelength`` from ``incident_wavelength`` [A] or else ``incident_energy`` [eV];
* ``mask``: the channel's ``pixel_mask`` (non-zero = bad) unless the config gives one;
* ``flat``: ``1 / flatfield`` (DECTRIS flatfields multiply raw counts) only when the detector
  has *not* applied it (``flatfield_enabled`` false), else none.

Values given explicitly in the processor's table override the stream's. The applied geometry is
returned with its origin (stream or config) for the log and the results' provenance.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import numpy as np

from beamstream.config import ConfigError, PipelineConfig

from .messages import SeriesStart

__all__ = [
    "FROM_STREAM",
    "needs_stream_geometry",
    "stream_geometry",
    "resolve_config",
    "with_placeholder_geometry",
]

log = logging.getLogger(__name__)
FROM_STREAM = "from-stream"
_GEOMETRY_KEYS = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "pixel1", "pixel2",
                  "wavelength", "shape")  # fmt: skip


def _wants(params: Mapping[str, Any]) -> bool:
    g = params.get("geometry")
    return g == FROM_STREAM or (isinstance(g, Mapping) and g.get("from") == "stream")


def needs_stream_geometry(config: PipelineConfig) -> bool:
    """True when a processor asks for ``geometry = "from-stream"``."""
    return any(_wants(p.params) for p in config.processors)


def _number(start: SeriesStart, key: str) -> float | None:
    v = start.header.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def stream_geometry(start: SeriesStart, channel: str | None = None) -> dict[str, Any]:
    """``{"geometry": {...}, "mask": array | None, "flat": array | None}`` of a start message.

    Raises
    ------
    ValueError
        Naming the start-message field that is missing (e.g. with ``header_detail = none``).
    """
    h = start.header
    dist = _number(start, "detector_distance")
    if dist is None:
        t = h.get("detector_translation")
        if isinstance(t, list) and len(t) == 3 and all(isinstance(x, int | float) for x in t):
            dist = float(t[2])
    need = {
        "beam_center_x": _number(start, "beam_center_x"),
        "beam_center_y": _number(start, "beam_center_y"),
        "pixel_size_x": _number(start, "pixel_size_x"),
        "pixel_size_y": _number(start, "pixel_size_y"),
        "detector_distance or detector_translation": dist,
    }
    missing = [k for k, v in need.items() if v is None]
    if start.image_size is None:
        missing.append("image_size_x/y")
    wl_a = _number(start, "incident_wavelength")
    energy = _number(start, "incident_energy")
    if wl_a is None and energy is None:
        missing.append("incident_wavelength or incident_energy")
    if missing:
        raise ValueError(f"start message of series {start.series_id} lacks {', '.join(missing)}")
    geometry: dict[str, Any] = {
        "dist": dist,
        "poni1": need["beam_center_y"] * need["pixel_size_y"],
        "poni2": need["beam_center_x"] * need["pixel_size_x"],
        "rot1": 0.0,
        "rot2": 0.0,
        "rot3": 0.0,
        "pixel1": need["pixel_size_y"],
        "pixel2": need["pixel_size_x"],
        "shape": list(start.image_size),
    }
    if wl_a is not None:
        geometry["wavelength"] = wl_a * 1e-10
    else:
        geometry["energy"] = energy / 1000.0  # keV
    ch = channel or (start.channels[0] if start.channels else None)
    mask = start.pixel_mask.get(ch) if ch is not None else None
    flat = None
    ff = start.flatfield.get(ch) if ch is not None else None
    if ff is not None and not h.get("flatfield_enabled", False):
        with np.errstate(divide="ignore"):
            flat = np.where(ff > 0, 1.0 / ff.astype(np.float64), np.nan).astype(np.float32)
    return {"geometry": geometry, "mask": mask, "flat": flat}


def _channel_of(params: Mapping[str, Any], config: PipelineConfig) -> str | None:
    key = params.get("key") or config.source.key
    return key.split(".", 1)[1] if isinstance(key, str) and key.startswith("image.") else None


def resolve_config(
    config: PipelineConfig, start: SeriesStart
) -> tuple[PipelineConfig, dict[str, dict[str, Any]]]:
    """A copy of ``config`` whose ``from-stream`` processors have the stream's geometry.

    Returns the new config and, per processor name, the applied values with their origin
    (``{"geometry": {...}, "origin": {key: "stream" | "config"}, "mask": ..., "flat": ...}``).
    """
    procs, applied = [], {}
    for p in config.processors:
        if not _wants(p.params):
            procs.append(p)
            continue
        params = dict(p.params)
        try:
            found = stream_geometry(start, _channel_of(params, config))
        except ValueError as e:
            raise ConfigError(f"{config.path}: processors[{p.index}].geometry: {e}") from None
        over = params["geometry"] if isinstance(params["geometry"], Mapping) else {}
        geometry = dict(found["geometry"])
        origin = {k: "stream" for k in geometry}
        for k, v in over.items():
            if k == "from":
                continue
            if k in ("energy", "wavelength"):
                geometry.pop("energy", None)
                geometry.pop("wavelength", None)
            geometry[k] = v
            origin[k] = "config"
        params["geometry"] = geometry
        mask = found["mask"]
        if params.get("mask") is None and mask is not None:
            params["mask"] = mask
        elif mask is not None:
            origin["mask"] = "config"
        if params.get("flat") is None and found["flat"] is not None:
            params["flat"] = found["flat"]
        procs.append(replace(p, params=MappingProxyType(params)))
        applied[p.name] = {
            "geometry": geometry,
            "origin": origin,
            "series_id": start.series_id,
            "mask_from_stream": params.get("mask") is mask and mask is not None,
            "flat_from_stream": found["flat"] is not None and params.get("flat") is found["flat"],
        }
        log.info("geometry of %s from series %s: %s", p.name, start.series_id, geometry)
    return replace(config, processors=tuple(procs)), applied


def with_placeholder_geometry(config: PipelineConfig) -> PipelineConfig:
    """``config`` with a made-up geometry where it comes from the stream, so that every other
    parameter can be checked before any detector is there (``beamstream check``): the
    ``frame_shape`` of ``[source]`` (else 1024 x 1024), 75 um pixels, beam in the middle, 1 m,
    1 A."""
    ny, nx = (config.source.frame_shape or (1024, 1024))[-2:]
    header = {
        "beam_center_x": nx / 2, "beam_center_y": ny / 2, "pixel_size_x": 75e-6,
        "pixel_size_y": 75e-6, "detector_distance": 1.0, "incident_wavelength": 1.0,
    }  # fmt: skip
    start = SeriesStart(0, "placeholder", (), image_size=(ny, nx), header=header)
    return resolve_config(config, start)[0]
