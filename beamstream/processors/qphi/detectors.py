"""Detector configuration of the q-phi integrator: geometry tables, static inputs, sources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from beamstream.arrays import load_array

from ..params import ParamError
from .bintable import DetectorInputs
from .geometry import DetectorGeometry

__all__ = ["Detector", "one_detector", "build_detectors"]


@dataclass(frozen=True, eq=False)
class Detector:
    """A configured detector: inputs, and where its frames are (None: ``view.frames``)."""

    inputs: DetectorInputs
    source: str | None
    key: str | None


def one_detector(
    where: str, geometry: Any, poni: Any, mask: Any, dark: Any, flat: Any
) -> DetectorInputs:
    """One detector's geometry and static inputs; ``where`` prefixes parameter names."""
    if geometry is None and poni is None:
        raise ParamError(f"{where}geometry", "a geometry table or a poni path", None)
    if geometry is not None and not isinstance(geometry, Mapping):
        raise ParamError(f"{where}geometry", "a table (dist, poni1, ... or poni)", geometry)
    table = dict(geometry or {})
    if poni is not None:
        if not isinstance(poni, str):
            raise ParamError(f"{where}poni", "a path to a PONI file", poni)
        table["poni"] = poni
    try:
        geom = DetectorGeometry.from_config(table)
    except ParamError:
        raise
    except (ValueError, TypeError) as exc:
        raise ParamError(f"{where}geometry", "a valid detector geometry", str(exc)) from exc
    arrays = {}
    for k, v in (("mask", mask), ("dark", dark), ("flat", flat)):
        a = load_array(f"{where}{k}", v)
        if a is not None and a.shape != geom.shape:
            raise ParamError(
                f"{where}{k}",
                f"an array of the detector shape {geom.shape}",
                f"shape {a.shape}",
            )
        arrays[k] = a
    return DetectorInputs(geom, **arrays)


def build_detectors(
    geometry: Any,
    poni: Any,
    mask: Any,
    dark: Any,
    flat: Any,
    detectors: Any,
    source: str | None,
    key: str | None,
) -> list[Detector]:
    """The detectors of a `QPhiIntegrator` config: the top-level one (``geometry``/``poni`` with
    ``mask``, ``dark``, ``flat``, ``source``, ``key``) then each ``detectors`` entry.

    Raises
    ------
    ParamError
        Naming the offending key (``detectors[1].mask`` ...).
    """
    out: list[Detector] = []
    if geometry is not None or poni is not None:
        out.append(Detector(one_detector("", geometry, poni, mask, dark, flat), source, key))
    elif any(v is not None for v in (mask, dark, flat)):
        raise ParamError(
            "mask", "a top-level geometry or poni for a top-level mask/dark/flat", mask
        )
    if detectors is not None:
        if not isinstance(detectors, list | tuple):
            raise ParamError("detectors", "a list of detector tables", detectors)
        allowed = {"geometry", "poni", "mask", "dark", "flat", "source", "key"}
        for i, d in enumerate(detectors):
            where = f"detectors[{i}]."
            if not isinstance(d, Mapping):
                raise ParamError(f"detectors[{i}]", "a table", d)
            extra = set(d) - allowed
            if extra:
                raise ParamError(
                    f"{where}{sorted(extra)[0]}", "one of " + ", ".join(sorted(allowed)), d
                )
            det = one_detector(
                where,
                d.get("geometry"),
                d.get("poni"),
                d.get("mask"),
                d.get("dark"),
                d.get("flat"),
            )
            src, k = d.get("source"), d.get("key")
            if (src is None) != (k is None):
                raise ParamError(f"{where}source", "both source and key, or neither", d)
            out.append(Detector(det, src, k))
    if not out:
        raise ParamError("geometry", "a geometry table, a poni path or a detectors list", None)
    if sum(1 for d in out if d.source is None) > 1:
        raise ParamError(
            "detectors", "at most one detector reading view.frames (no source)", detectors
        )
    return out
