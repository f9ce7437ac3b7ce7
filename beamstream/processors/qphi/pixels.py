"""pyFAI's per-pixel formulas: detector coordinates, rotations, and `PixelArrays`.

Formulas follow pyFAI (``geometry/core.py``): detector coordinates ``p = (p1, p2, L + p3)`` are
rotated by ``R3 R2 R1`` into ``t``; ``2theta = atan2(|t12|, t3)``, ``chi = atan2(t1, t2)``,
``q = 4 pi sin(theta) / lambda``; solid angle ``cos^3(alpha)`` with ``cos(alpha) = p3 / |p|``
(relative, 1 at the PONI); polarization
``P = (1 + cos^2 2theta - f cos(2 (chi + offset)) (1 - cos^2 2theta)) / 2``.
`DetectorGeometry` applies them to its parameters; pyFAI is not imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .units import q_scale

__all__ = ["PixelArrays", "flat_coords", "rotate", "rotation_matrix"]


@dataclass(frozen=True)
class PixelArrays:
    """Per-pixel geometry, each array of the detector's ``shape`` (float64 unless noted).

    Attributes
    ----------
    tth
        Scattering angle 2theta in radians.
    chi
        Azimuth in radians, pyFAI convention, in (-pi, pi].
    q_m
        Momentum transfer in 1/m (multiply by `q_scale` for nm^-1 or A^-1).
    solid_angle
        pyFAI's relative solid angle ``cos^3(alpha)`` (float32, 1 at the PONI).
    cos_alpha
        Cosine of the incidence angle on the detector.
    """

    tth: np.ndarray
    chi: np.ndarray
    q_m: np.ndarray
    solid_angle: np.ndarray
    cos_alpha: np.ndarray

    def q(self, unit: str = "q_nm^-1") -> np.ndarray:
        """q in ``unit``."""
        return self.q_m * q_scale(unit)

    def polarization(self, factor: float | None, axis_offset: float = 0.0) -> np.ndarray:
        """pyFAI's polarization array (float32); ones when ``factor`` is None."""
        if factor is None:
            return np.ones(self.tth.shape, dtype=np.float32)
        c2 = np.cos(self.tth) ** 2
        pol = 0.5 * (1.0 + c2 - factor * np.cos(2.0 * (self.chi + axis_offset)) * (1.0 - c2))
        return pol.astype(np.float32)


def flat_coords(
    shape: tuple[int, ...],
    pixel1: float,
    pixel2: float,
    poni1: float,
    poni2: float,
    dist: float,
    corners: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unrotated ``(p1, p2, p3)`` [m] of a flat pixel grid in pyFAI's PONI model.

    Parameters
    ----------
    shape
        ``(rows, columns)`` of the detector.
    pixel1, pixel2
        Pixel size [m] along rows (slow) and columns (fast).
    poni1, poni2
        PONI [m] along rows and columns.
    dist
        Sample to PONI distance [m] (the constant ``p3``).
    corners
        Pixel centres (index + 0.5, arrays of ``shape``) when False, else the four corners
        (arrays of ``shape + (4,)``).

    Returns
    -------
    tuple of numpy.ndarray
        ``(p1, p2, p3)``, float64, C-contiguous.
    """
    ny, nx = shape
    lead: tuple[int, ...] = ()
    if corners:
        i = np.arange(ny, dtype=np.float64)[:, None, None]
        j = np.arange(nx, dtype=np.float64)[None, :, None]
        di = np.array([0.0, 1.0, 1.0, 0.0])
        dj = np.array([0.0, 0.0, 1.0, 1.0])
        p1 = (i + di) * pixel1 - poni1 + np.zeros((1, nx, 1))
        p2 = (j + dj) * pixel2 - poni2 + np.zeros((ny, 1, 1))
        p1 = np.broadcast_to(p1, (*lead, ny, nx, 4))
        p2 = np.broadcast_to(p2, (*lead, ny, nx, 4))
    else:
        i = (np.arange(ny, dtype=np.float64) + 0.5)[:, None]
        j = (np.arange(nx, dtype=np.float64) + 0.5)[None, :]
        p1 = np.broadcast_to(i * pixel1 - poni1, (*lead, ny, nx))
        p2 = np.broadcast_to(j * pixel2 - poni2, (*lead, ny, nx))
    p3 = np.full(p1.shape, dist)
    return np.ascontiguousarray(p1), np.ascontiguousarray(p2), p3


def rotation_matrix(rot1: float, rot2: float, rot3: float) -> np.ndarray:
    """``R3 R2 R1`` (pyFAI's rotation convention, angles in radians)."""
    c1, s1 = math.cos(rot1), math.sin(rot1)
    c2, s2 = math.cos(rot2), math.sin(rot2)
    c3, s3 = math.cos(rot3), math.sin(rot3)
    r1 = np.array([[1.0, 0.0, 0.0], [0.0, c1, s1], [0.0, -s1, c1]])
    r2 = np.array([[c2, 0.0, -s2], [0.0, 1.0, 0.0], [s2, 0.0, c2]])
    r3 = np.array([[c3, -s3, 0.0], [s3, c3, 0.0], [0.0, 0.0, 1.0]])
    return r3 @ r2 @ r1


def rotate(
    p1: np.ndarray,
    p2: np.ndarray,
    p3: np.ndarray,
    rot1: float,
    rot2: float,
    rot3: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lab coordinates ``t = R3 R2 R1 p`` (pyFAI's rotation convention, angles in radians)."""
    m = rotation_matrix(rot1, rot2, rot3)
    t1 = m[0, 0] * p1 + m[0, 1] * p2 + m[0, 2] * p3
    t2 = m[1, 0] * p1 + m[1, 1] * p2 + m[1, 2] * p3
    t3 = m[2, 0] * p1 + m[2, 1] * p2 + m[2, 2] * p3
    return t1, t2, t3
