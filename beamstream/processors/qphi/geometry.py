"""`DetectorGeometry`: a pyFAI-compatible detector description and its per-pixel arrays.

Two kinds of detector are described by `DetectorGeometry`:

* a **flat** detector of ``shape`` pixels of size ``pixel1`` x ``pixel2`` (pyFAI's PONI model:
  ``dist``, ``poni1``, ``poni2``, ``rot1..3``), pixel centres at index + 0.5;
* **pixel positions**: per-pixel ``(x, y, z)`` centres in metres of any shape (e.g. from
  extra-geom ``get_pixel_positions()``), with ``dist`` added to ``z`` and the PONI (beam centre)
  ``(poni2, poni1) = (x_b, y_b)`` subtracted, then the same rotations. ``x`` plays pyFAI's
  dimension 2 and ``y`` dimension 1, as in extra-geom's ``to_pyfai_detector()``.

The per-pixel formulas (pyFAI's ``geometry/core.py``) are in `pixels`; this module holds the
parameters, their validation, the constructors (flat, PONI file, pixel positions, config table),
the identity (fingerprint) and the cached per-pixel arrays. pyFAI is not imported here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from beamstream.arrays import load_array

from ._bbox_kernels import corner_deltas
from .geometry_params import as_number, flat_shape, wavelength_m
from .pixels import PixelArrays, flat_coords, rotate, rotation_matrix
from .poni import read_poni
from .units import q_scale

__all__ = ["DetectorGeometry"]


@dataclass(frozen=True, eq=False)
class DetectorGeometry:
    """One detector's geometry (flat pixel grid or explicit pixel positions).

    Use the constructors `flat`, `from_poni`, `from_pixel_positions` or `from_config`; they
    validate their arguments and raise ValueError with a readable message.

    Parameters
    ----------
    dist
        Sample to PONI distance along the detector normal [m], > 0.
    poni1, poni2
        PONI along the slow (row) and fast (column) axis [m] (for pixel positions: the beam
        centre ``y_b`` and ``x_b`` in the positions' frame).
    rot1, rot2, rot3
        pyFAI rotations [rad].
    wavelength
        Wavelength [m], > 0.
    shape
        Shape of one frame of this detector, e.g. ``(256, 256)`` or ``(16, 512, 128)``.
    pixel1, pixel2
        Pixel size [m] of a flat detector (None for pixel positions).
    positions
        ``shape + (3,)`` pixel centres ``(x, y, z)`` [m], or None for a flat detector.
    corners
        Optional ``shape + (4, 3)`` pixel corners ``(x, y, z)`` [m] for pixel positions
        (needed for ``split="bbox"``).
    """

    dist: float
    poni1: float
    poni2: float
    rot1: float
    rot2: float
    rot3: float
    wavelength: float
    shape: tuple[int, ...]
    pixel1: float | None = None
    pixel2: float | None = None
    positions: np.ndarray | None = field(default=None, repr=False)
    corners: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"geometry.{name}: expected a finite number, got {v!r}")
        if self.dist <= 0:
            raise ValueError(
                f"geometry.dist: expected a positive distance in metres, got {self.dist}"
            )
        if self.wavelength <= 0:
            raise ValueError(f"geometry.wavelength: expected > 0 metres, got {self.wavelength}")
        if not self.shape or any(int(s) <= 0 for s in self.shape):
            raise ValueError(f"geometry.shape: expected positive sizes, got {self.shape!r}")
        if self.positions is None:
            for name in ("pixel1", "pixel2"):
                v = getattr(self, name)
                if v is None or not math.isfinite(v) or v <= 0:
                    raise ValueError(
                        f"geometry.{name}: expected a positive pixel size [m], got {v!r}"
                    )
        else:
            if self.positions.shape != (*self.shape, 3):
                raise ValueError(
                    f"geometry.positions: expected shape {(*self.shape, 3)}, "
                    f"got {self.positions.shape}"
                )
            if self.corners is not None and self.corners.shape != (*self.shape, 4, 3):
                raise ValueError(
                    f"geometry.corners: expected shape {(*self.shape, 4, 3)}, "
                    f"got {self.corners.shape}"
                )

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def flat(
        cls,
        *,
        dist: float,
        poni1: float,
        poni2: float,
        pixel1: float,
        pixel2: float,
        shape: tuple[int, ...] | list[int],
        rot1: float = 0.0,
        rot2: float = 0.0,
        rot3: float = 0.0,
        wavelength: float | None = None,
        energy: float | None = None,
    ) -> DetectorGeometry:
        """A flat pixel detector in pyFAI's PONI model (``energy`` [keV] or ``wavelength`` [m])."""
        return cls(
            dist=as_number("dist", dist),
            poni1=as_number("poni1", poni1),
            poni2=as_number("poni2", poni2),
            rot1=as_number("rot1", rot1),
            rot2=as_number("rot2", rot2),
            rot3=as_number("rot3", rot3),
            wavelength=wavelength_m(wavelength, energy),
            shape=flat_shape(shape),
            pixel1=as_number("pixel1", pixel1),
            pixel2=as_number("pixel2", pixel2),
        )

    @classmethod
    def from_poni(cls, path: str, **overrides: Any) -> DetectorGeometry:
        """Read a PONI file; keyword ``overrides`` (e.g. ``shape``, ``energy``) take precedence."""
        params = read_poni(path)
        params.pop("poni_version", None)
        detector = params.pop("detector", None)
        energy = overrides.pop("energy", None)
        if energy is not None:
            params.pop("wavelength", None)
        params.update({k: v for k, v in overrides.items() if v is not None})
        if "shape" not in params:
            raise ValueError(
                f"PONI file {path!r} (detector {detector!r}) gives no detector shape: "
                "set geometry.shape, e.g. shape = [1043, 981]"
            )
        for k in ("pixel1", "pixel2"):
            if k not in params:
                raise ValueError(f"PONI file {path!r} gives no {k}: set geometry.{k}")
        return cls.flat(energy=energy, **params)

    @classmethod
    def from_pixel_positions(
        cls,
        positions: np.ndarray,
        *,
        dist: float,
        beam_center: tuple[float, float] = (0.0, 0.0),
        rot1: float = 0.0,
        rot2: float = 0.0,
        rot3: float = 0.0,
        wavelength: float | None = None,
        energy: float | None = None,
        corners: np.ndarray | None = None,
    ) -> DetectorGeometry:
        """Per-pixel centres ``(..., 3)`` = (x, y, z) [m]; ``beam_center = (x_b, y_b)`` [m]."""
        pos = np.ascontiguousarray(positions, dtype=np.float64)
        if pos.ndim < 2 or pos.shape[-1] != 3:
            raise ValueError(f"pixel positions: expected an array (..., 3), got shape {pos.shape}")
        if len(beam_center) != 2:
            raise ValueError(f"beam_center: expected (x, y) in metres, got {beam_center!r}")
        cor = None if corners is None else np.ascontiguousarray(corners, dtype=np.float64)
        return cls(
            dist=as_number("dist", dist),
            poni1=as_number("beam_center[1]", beam_center[1]),
            poni2=as_number("beam_center[0]", beam_center[0]),
            rot1=as_number("rot1", rot1),
            rot2=as_number("rot2", rot2),
            rot3=as_number("rot3", rot3),
            wavelength=wavelength_m(wavelength, energy),
            shape=tuple(pos.shape[:-1]),
            positions=pos,
            corners=cor,
        )

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> DetectorGeometry:
        """Build from a config table: ``poni`` path, or ``positions`` (.npy path or array), or
        the flat keywords (``dist, poni1, poni2, pixel1, pixel2, shape, rot1..3, wavelength |
        energy``)."""
        t = dict(table)
        if "poni" in t:
            path = t.pop("poni")
            return cls.from_poni(path, **t)
        if "positions" in t:
            pos = t.pop("positions")
            pos = load_array("geometry.positions", pos)
            corners = load_array("geometry.corners", t.pop("corners", None))
            bc = t.pop("beam_center", (0.0, 0.0))
            return cls.from_pixel_positions(pos, beam_center=tuple(bc), corners=corners, **t)
        if "dist" not in t:
            raise ValueError("geometry: expected a 'poni' path, 'positions', or 'dist' and friends")
        return cls.flat(**t)

    # -- identity -----------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A short hash of everything that determines the per-pixel arrays."""
        h = hashlib.sha1()
        h.update(
            repr(
                (
                    self.dist,
                    self.poni1,
                    self.poni2,
                    self.rot1,
                    self.rot2,
                    self.rot3,
                    self.wavelength,
                    self.shape,
                    self.pixel1,
                    self.pixel2,
                )
            ).encode()
        )
        for arr in (self.positions, self.corners):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Plain parameters (for state meta and results attributes)."""
        d: dict[str, Any] = {
            "dist": self.dist,
            "poni1": self.poni1,
            "poni2": self.poni2,
            "rot1": self.rot1,
            "rot2": self.rot2,
            "rot3": self.rot3,
            "wavelength": self.wavelength,
            "shape": list(self.shape),
        }
        if self.positions is None:
            d.update(pixel1=self.pixel1, pixel2=self.pixel2)
        else:
            d["positions_sha1"] = self.fingerprint()
        return d

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    # -- arrays -------------------------------------------------------------------------------
    def detector_coords(self, corners: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unrotated ``(p1, p2, p3)`` of pixel centres (or ``shape + (4,)`` corners) [m]."""
        if self.positions is None:
            return flat_coords(
                self.shape, self.pixel1, self.pixel2, self.poni1, self.poni2, self.dist, corners
            )
        src = self.positions
        if corners:
            if self.corners is None:
                raise ValueError(
                    "pixel splitting needs pixel corners: give geometry.corners for "
                    "pixel-position detectors"
                )
            src = self.corners
        return src[..., 1] - self.poni1, src[..., 0] - self.poni2, self.dist + src[..., 2]

    def rotate(
        self, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lab coordinates ``t = R3 R2 R1 p`` (pyFAI's rotation convention)."""
        return rotate(p1, p2, p3, self.rot1, self.rot2, self.rot3)

    def angles(self, corners: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(2theta, chi)`` in radians at pixel centres (or corners)."""
        t1, t2, t3 = self.rotate(*self.detector_coords(corners))
        return np.arctan2(np.sqrt(t1 * t1 + t2 * t2), t3), np.arctan2(t1, t2)

    def arrays(self) -> PixelArrays:
        """Per-pixel 2theta, chi, q, solid angle (cached on the instance)."""
        cached = self.__dict__.get("_arrays")
        if cached is not None:
            return cached
        p1, p2, p3 = self.detector_coords()
        tth, chi = self.angles()
        q_m = 4.0 * math.pi * np.sin(0.5 * tth) / self.wavelength
        cos_a = p3 / np.sqrt(p1 * p1 + p2 * p2 + p3 * p3)
        sa = (cos_a**3).astype(np.float32)
        out = PixelArrays(tth=tth, chi=chi, q_m=q_m, solid_angle=sa, cos_alpha=cos_a)
        object.__setattr__(self, "_arrays", out)
        return out

    def deltas(self, unit: str) -> tuple[np.ndarray, np.ndarray]:
        """pyFAI's bounding-box half widths: max |corner - centre| in q (``unit``) and chi (rad)."""
        p1, p2, p3 = (np.ascontiguousarray(p) for p in self.detector_coords(corners=True))
        arr = self.arrays()
        shape, corners = p1.shape[:-1], p1.shape[-1]
        m = rotation_matrix(self.rot1, self.rot2, self.rot3)
        dq = np.empty(shape, dtype=np.float64)
        dchi = np.empty(shape, dtype=np.float64)
        corner_deltas(
            *(p.reshape(-1, corners) for p in (p1, p2, p3)),
            m,
            float(self.wavelength),
            float(q_scale(unit)),
            np.ascontiguousarray(arr.q(unit), dtype=np.float64).ravel(),
            np.ascontiguousarray(arr.chi, dtype=np.float64).ravel(),
            dq.reshape(-1),
            dchi.reshape(-1),
        )
        return dq, dchi
