"""Read pyFAI PONI files (versions 1, 2 and 2.1) without importing pyFAI.

A PONI file is a list of ``Key: value`` lines (``#`` starts a comment). Version 1 holds
``PixelSize1``/``PixelSize2``; versions 2 and 2.1 hold ``poni_version``, ``Detector`` and a JSON
``Detector_config`` (``pixel1``, ``pixel2``, optional ``max_shape`` and ``orientation``). All
lengths are in metres, angles in radians, the wavelength in metres.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["PoniError", "parse_poni", "read_poni"]

_FLOAT_KEYS = {
    "distance": "dist",
    "poni1": "poni1",
    "poni2": "poni2",
    "rot1": "rot1",
    "rot2": "rot2",
    "rot3": "rot3",
    "wavelength": "wavelength",
    "pixelsize1": "pixel1",
    "pixelsize2": "pixel2",
}


class PoniError(ValueError):
    """A PONI file that cannot be read or understood."""


def parse_poni(text: str, origin: str = "<string>") -> dict[str, Any]:
    """Parse the text of a PONI file.

    Parameters
    ----------
    text
        The file content.
    origin
        Where the text came from, used in error messages.

    Returns
    -------
    dict
        Keys among ``dist, poni1, poni2, rot1, rot2, rot3, wavelength, pixel1, pixel2`` (floats),
        ``shape`` (tuple of ints, when the file knows it), ``detector`` (name) and
        ``poni_version``.

    Raises
    ------
    PoniError
        On a line that is not ``key: value``, a non-numeric value, an unsupported detector
        orientation, or a missing distance / PONI / pixel size.
    """
    out: dict[str, Any] = {"poni_version": 1.0}
    config: dict[str, Any] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if ":" not in line:
            raise PoniError(f"{origin}:{lineno}: expected 'key: value', got {raw!r}")
        key, value = (s.strip() for s in line.split(":", 1))
        lkey = key.lower()
        if lkey == "poni_version":
            try:
                out["poni_version"] = float(value)
            except ValueError as exc:
                raise PoniError(f"{origin}:{lineno}: bad poni_version {value!r}") from exc
        elif lkey == "detector":
            out["detector"] = value
        elif lkey == "detector_config":
            try:
                config = json.loads(value) if value else {}
            except json.JSONDecodeError as exc:
                raise PoniError(f"{origin}:{lineno}: Detector_config is not JSON: {exc}") from exc
            if not isinstance(config, dict):
                raise PoniError(f"{origin}:{lineno}: Detector_config must be a JSON object")
        elif lkey in _FLOAT_KEYS:
            try:
                v = float(value)
            except ValueError as exc:
                raise PoniError(f"{origin}:{lineno}: {key} is not a number: {value!r}") from exc
            if not math.isfinite(v):
                raise PoniError(f"{origin}:{lineno}: {key} is not finite: {value!r}")
            out[_FLOAT_KEYS[lkey]] = v
        # other keys (SplineFile, calibration notes) are ignored
    for ckey in ("pixel1", "pixel2"):
        if ckey in config and ckey not in out:
            out[ckey] = float(config[ckey])
    if config.get("max_shape") is not None:
        out["shape"] = tuple(int(s) for s in config["max_shape"])
    orientation = int(config.get("orientation", 3))
    if orientation != 3:
        raise PoniError(
            f"{origin}: detector orientation {orientation} is not supported (only pyFAI's "
            "default orientation 3)"
        )
    if config.get("splineFile") or config.get("splinefile"):
        raise PoniError(f"{origin}: detectors with a distortion spline are not supported")
    missing = [k for k in ("dist", "poni1", "poni2") if k not in out]
    if missing:
        raise PoniError(f"{origin}: missing {', '.join(missing)} (not a PONI file?)")
    return out


def read_poni(path: str | Path) -> dict[str, Any]:
    """Read a PONI file from disk; see `parse_poni`.

    Raises
    ------
    PoniError
        When the file cannot be opened or parsed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PoniError(f"cannot read PONI file {str(p)!r}: {exc}") from exc
    return parse_poni(text, origin=str(p))
