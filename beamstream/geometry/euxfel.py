"""extra-geom geometries of AGIPD 1M, LPD 1M, DSSC 1M and JUNGFRAU from a config table.

Table keys: ``detector`` (``AGIPD_1M``, ``LPD_1M``, ``DSSC_1M``, ``JUNGFRAU``) and one of
``file`` (a CrystFEL ``.geom`` file; for LPD and DSSC also an EXtra-geom ``.h5`` file, placed by
``quad_positions``), ``quad_positions`` (four ``[x, y]``: pixels for AGIPD, mm for LPD and DSSC,
as extra-geom takes them) or, for JUNGFRAU, ``module_positions`` (``[x, y]`` per module, pixels)
with ``orientations`` (``[x, y]`` of +1/-1 per module). Without any, a detector's example
positions from the extra-geom documentation are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DETECTORS", "DEFAULT_POSITIONS", "build_geometry", "pixel_positions"]

#: config name -> extra-geom class name
DETECTORS = {
    "AGIPD_1M": "AGIPD_1MGeometry",
    "LPD_1M": "LPD_1MGeometry",
    "DSSC_1M": "DSSC_1MGeometry",
    "JUNGFRAU": "JUNGFRAUGeometry",
}


def _jungfrau4m_positions() -> tuple[list, list]:
    """The JUNGFRAU 4M example of the extra-geom documentation (8 modules, pixel units)."""
    x0, y0 = 1125, 1078
    width, height = 256 * 4 + 2 * 3, 256 * 2 + 2
    pos = [(x0 - width, y0 - height - i * (height + 33)) for i in range(4)]
    pos += [(-x0, -y0 + i * (height + 33)) for i in range(4)]
    return pos, [(-1, -1)] * 4 + [(1, 1)] * 4


#: example positions (the extra-geom documentation's)
DEFAULT_POSITIONS: dict[str, Any] = {
    "AGIPD_1M": [(-525, 625), (-550, -10), (520, -160), (542.5, 475)],
    "LPD_1M": [(11.4, 299), (-11.5, 8), (254.5, -16), (278.5, 275)],
    "DSSC_1M": [(-130, 5), (-130, -125), (5, -125), (5, 5)],
    "JUNGFRAU": _jungfrau4m_positions(),
}

_KEYS = {"detector", "file", "quad_positions", "module_positions", "orientations", "modules"}


def build_geometry(table: Mapping[str, Any], where: str = "geometry") -> Any:
    """An extra-geom geometry from a config table (see the module docstring).

    Raises
    ------
    ValueError
        Naming ``where.<key>``, what was expected and what was found.
    """
    import extra_geom

    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: expected a table with a detector name, got {table!r}")
    extra = set(table) - _KEYS
    if extra:
        known = ", ".join(sorted(_KEYS))
        raise ValueError(f"{where}.{sorted(extra)[0]}: expected one of {known}, got unknown key")
    det = table.get("detector")
    if det not in DETECTORS:
        raise ValueError(f"{where}.detector: expected one of {', '.join(DETECTORS)}, got {det!r}")
    cls = getattr(extra_geom, DETECTORS[det])
    path = table.get("file")
    try:
        if path is not None:
            return _from_file(cls, det, str(path), table, where)
        if det == "JUNGFRAU":
            pos, orient = DEFAULT_POSITIONS[det]
            n = table.get("modules")
            pos = _pairs(table.get("module_positions", pos[:n] if n else pos), where)
            orient = _pairs(table.get("orientations", orient[: len(pos)]), where)
            return cls.from_module_positions(pos, orientations=orient)
        quads = _pairs(table.get("quad_positions", DEFAULT_POSITIONS[det]), where)
        if len(quads) != 4:
            raise ValueError(f"{where}.quad_positions: expected 4 [x, y] pairs, got {quads!r}")
        return cls.from_quad_positions(quads)
    except (OSError, KeyError, TypeError) as e:
        raise ValueError(f"{where}: cannot build a {det} geometry: {e}") from None


def _from_file(cls: Any, det: str, path: str, table: Mapping[str, Any], where: str) -> Any:
    if not Path(path).is_file():
        raise ValueError(f"{where}.file: expected an existing geometry file, got {path!r}")
    if path.endswith((".h5", ".hdf5")):
        if not hasattr(cls, "from_h5_file_and_quad_positions"):
            raise ValueError(
                f"{where}.file: expected a CrystFEL .geom file for {det}, got {path!r}"
            )
        quads = _pairs(table.get("quad_positions", DEFAULT_POSITIONS[det]), where)
        return cls.from_h5_file_and_quad_positions(path, quads)
    return cls.from_crystfel_geom(path)


def _pairs(value: Any, where: str) -> list[tuple[float, float]]:
    try:
        out = [(float(a), float(b)) for a, b in value]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a list of [x, y] pairs, got {value!r}") from None
    return out


def pixel_positions(geom: Any) -> np.ndarray:
    """Unassembled pixel centres ``(module, ss, fs, 3)`` = (x, y, z) in metres (extra-geom's)."""
    return np.ascontiguousarray(geom.get_pixel_positions(), dtype=np.float64)
