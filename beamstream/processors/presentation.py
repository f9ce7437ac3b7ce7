"""How results present themselves to readers: axis descriptions, plot kind, the default plot.

The numbers of a `Result` are the processor's; this module adds what viewers need to draw them
right, in one place for the HDF5 writer, xarray and reports:

* `coord_long_name`: the description of an axis (the scan motor's ``source/key`` for ``scan``);
* `interpretation`: whether the last axes are a curve (``"spectrum"``) or an ``"image"``;
* `present`: applied by the pipeline to each accumulator's results, it records the scan motor
  on the ``scan`` axis and marks the accumulator's main result (``attrs["default_plot"]``);
* `default_plot`: the pipeline's science result (the last accumulator with a main result).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from beamstream.processors.base import Result

__all__ = [
    "DIM_LONG_NAMES",
    "coord_long_name",
    "interpretation",
    "present",
    "default_plot",
    "errors_of",
    "IMAGE_DIMS",
]

#: descriptions of the axes the built-in processors use
DIM_LONG_NAMES = {
    "scan": "scan variable",
    "slot": "frame-pattern slot",
    "q": "scattering vector q",
    "q_1d": "scattering vector q",
    "phi": "azimuthal angle",
    "energy": "photon energy",
    "train": "train id",
    "train_id": "train id",
    "x": "x position",
    "y": "y position",
    "frame": "frame",
}

#: trailing dim pairs drawn as images
IMAGE_DIMS = {("y", "x"), ("phi", "q"), ("ss", "fs")}


def coord_long_name(result: Result, dim: str) -> str:
    """The description of axis ``dim`` of ``result`` (its own, else the built-in one, else dim)."""
    return result.coord_long_names.get(dim) or DIM_LONG_NAMES.get(dim, dim)


def interpretation(result: Result, dims: tuple[str, ...] | None = None) -> str:
    """``"image"``, ``"spectrum"`` or ``"scalar"``: how the last axes of ``result`` are drawn.

    ``attrs["interpretation"]`` wins; else two trailing image axes (``y, x``, ``phi, q``, or two
    axes without coordinates, such as detector pixels) make an image, one axis or more a curve.
    ``dims``: those of a view of the result (size-1 dims squeezed), default its own.
    """
    given = result.attrs.get("interpretation")
    if given in ("scalar", "spectrum", "image"):
        return str(given)
    dims = result.dims if dims is None else tuple(dims)
    if len(dims) >= 2:
        last = tuple(dims[-2:])
        if last in IMAGE_DIMS or not (set(last) & set(result.coords)):
            return "image"
    return "spectrum" if dims else "scalar"


def errors_of(result: Result, named: Mapping[str, Result]) -> np.ndarray | None:
    """The standard errors of ``result``'s values, as ``attrs["errors"]`` names them.

    ``attrs["errors"]`` is the name of a sibling result of the same shape, or ``"poisson"``
    (counts: the square root of the values). None without errors.
    """
    how = result.attrs.get("errors")
    if how == "poisson":
        return np.sqrt(np.asarray(result.data, dtype=np.float64))
    other = named.get(how) if isinstance(how, str) else None
    if other is not None and np.shape(other.data) == np.shape(result.data):
        return np.asarray(other.data)
    return None


def present(
    results: Mapping[str, Result],
    main: str | None,
    scan: tuple[str, str] | None = None,
) -> dict[str, Result]:
    """``results`` with the scan motor on their ``scan`` axis and ``main`` marked as default plot.

    Parameters
    ----------
    results
        One accumulator's results.
    main
        The name of its main result (None: none).
    scan
        ``(source, key)`` of the pipeline's scan variable, if it has one.
    """
    out = {}
    for name, r in results.items():
        changes: dict[str, Any] = {}
        if scan is not None and "scan" in r.dims and "scan" not in r.coord_long_names:
            changes["coord_long_names"] = {**r.coord_long_names, "scan": "/".join(scan)}
        if name == main:
            changes["attrs"] = {**r.attrs, "default_plot": True}
        out[name] = dataclasses.replace(r, **changes) if changes else r
    return out


def default_plot(results: Mapping[str, Mapping[str, Result]]) -> tuple[str, str] | None:
    """``(processor, result)`` of the pipeline's science result.

    The last processor (in pipeline order) with a result marked ``default_plot`` wins (later
    accumulators build on earlier ones: maps on attributes on q-phi); without marks, the last
    processor's first result with more than one value.
    """
    for proc in reversed(list(results)):
        for name, r in results[proc].items():
            if r.attrs.get("default_plot"):
                return proc, name
    for proc in reversed(list(results)):
        for name, r in results[proc].items():
            if np.size(r.data) > 1 and np.asarray(r.data).dtype.kind in "biuf":
                return proc, name
    return None
