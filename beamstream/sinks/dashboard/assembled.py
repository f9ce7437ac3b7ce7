"""Assembled detector images for display: module images placed by extra-geom.

When the pipeline's ``[source] geometry`` names an extra-geom geometry, images with a module axis
(the latest train, binned means, pump-probe differences; already reduced, so once per display
update) are assembled with ``position_modules`` into a reused buffer, with the detector's real
aspect and the gaps between modules (NaN, drawn transparent). Without a geometry, modules are
stacked along y (`beamstream.sinks.dashboard.prep.flatten_modules`).

The geometry is process-wide (`use_geometry`); every thread that draws keeps its own
`beamstream.geometry.Assembler`, so concurrent documents never share an output buffer.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from beamstream.sinks.dashboard.prep import flatten_modules

__all__ = ["use_geometry", "use_config", "current_geometry", "to_display"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_geometry: Any = None
_config_key: tuple[str, str] | None = None
_local = threading.local()


def use_geometry(geometry: Any) -> None:
    """Assemble module images with this extra-geom geometry (None: stack them along y)."""
    global _geometry
    with _lock:
        _geometry = geometry


def current_geometry() -> Any:
    return _geometry


def use_config(text: str, path: str = "<string>") -> None:
    """Use the ``[source] geometry`` of a pipeline config text (no geometry: none)."""
    global _config_key
    key = (text, path)
    with _lock:
        if key == _config_key:
            return
        _config_key = key
    geometry = None
    if text:
        from beamstream.config import ConfigError, parse_config, source_geometry

        try:
            geometry = source_geometry(parse_config(text, path or "<string>"))
        except (ConfigError, ValueError, ImportError) as e:  # stacked modules instead
            log.warning("no assembled images: %s", e)
    use_geometry(geometry)


def to_display(img: np.ndarray) -> tuple[np.ndarray, bool]:
    """A 2-D image for display and whether it was assembled by the geometry."""
    geometry = _geometry
    if geometry is None or np.ndim(img) != 3:
        return flatten_modules(img), False
    assembler = getattr(_local, "assembler", None)
    if assembler is None or assembler.geometry is not geometry:
        from beamstream.geometry import Assembler

        assembler = _local.assembler = Assembler(geometry)
    if tuple(img.shape) != assembler.module_shape:
        return flatten_modules(img), False
    data = img if img.dtype == np.float32 else img.astype(np.float32)
    return assembler.assemble(data), True
