"""Flat-detector scattering geometry in pyFAI's convention, and PONI files (no pyFAI needed).

The formulas are pyFAI's (``pyFAI/geometry/core.py``, see algorithms.md 2.1): for the pixel of row
``i`` and column ``j``::

    p1 = (i + 0.5) * pixel1 - poni1 ;  p2 = (j + 0.5) * pixel2 - poni2 ;  L = dist
    t1 = p1 c2 c3 + p2 (c3 s1 s2 - c1 s3) - L (c1 c3 s2 + s1 s3)
    t2 = p1 c2 s3 + p2 (c1 c3 + s1 s2 s3) - L (-c3 s1 + c1 s2 s3)
    t3 = p1 s2 - p2 c2 s1 + L c1 c2
    2theta = atan2(sqrt(t1^2 + t2^2), t3) ;  chi = atan2(t1, t2) ;  q = 4 pi sin(theta) / lambda

with ``ci = cos(roti)``, ``si = sin(roti)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Geometry", "write_poni", "HC_KEV_ANGSTROM"]

#: h*c in keV * Angstrom (pyFAI's constant): lambda[A] = HC_KEV_ANGSTROM / E[keV]
HC_KEV_ANGSTROM = 12.398419843320026


@dataclass(frozen=True)
class Geometry:
    """A flat detector's geometry, in pyFAI's parameters (SI units: metres, radians).

    Parameters
    ----------
    dist
        Sample to PONI distance along the detector normal [m].
    poni1, poni2
        The point of normal incidence from the detector origin along rows (slow, y) and
        columns (fast, x) [m].
    rot1, rot2, rot3
        pyFAI's rotations [rad].
    pixel1, pixel2
        Pixel size along rows and columns [m].
    wavelength
        X-ray wavelength [m].
    shape
        ``(rows, columns)`` of the detector.
    """

    dist: float = 0.6
    poni1: float = (530.3 + 0.5) * 75e-6
    poni2: float = (500.7 + 0.5) * 75e-6
    rot1: float = 0.004
    rot2: float = -0.003
    rot3: float = 0.0
    pixel1: float = 75e-6
    pixel2: float = 75e-6
    wavelength: float = HC_KEV_ANGSTROM / 12.0 * 1e-10
    shape: tuple[int, int] = (1024, 1024)

    @classmethod
    def from_beam_center(
        cls,
        center_row: float,
        center_col: float,
        dist: float = 0.6,
        energy_kev: float = 12.0,
        pixel: float = 75e-6,
        shape: tuple[int, int] = (1024, 1024),
        rot1: float = 0.0,
        rot2: float = 0.0,
        rot3: float = 0.0,
    ) -> Geometry:
        """A geometry from the beam centre in pixel-index coordinates (pixel centres at i, j)."""
        return cls(
            dist=dist,
            poni1=(center_row + 0.5) * pixel,
            poni2=(center_col + 0.5) * pixel,
            rot1=rot1,
            rot2=rot2,
            rot3=rot3,
            pixel1=pixel,
            pixel2=pixel,
            wavelength=HC_KEV_ANGSTROM / energy_kev * 1e-10,
            shape=(int(shape[0]), int(shape[1])),
        )

    @property
    def energy_kev(self) -> float:
        """Photon energy [keV]."""
        return HC_KEV_ANGSTROM / (self.wavelength * 1e10)

    def _lab(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lab coordinates ``t1, t2, t3`` of the pixel centres and ``cos(alpha)`` (float64)."""
        n1, n2 = self.shape
        p1 = ((np.arange(n1) + 0.5) * self.pixel1 - self.poni1)[:, None]
        p2 = ((np.arange(n2) + 0.5) * self.pixel2 - self.poni2)[None, :]
        L = self.dist
        c1, c2, c3 = np.cos([self.rot1, self.rot2, self.rot3])
        s1, s2, s3 = np.sin([self.rot1, self.rot2, self.rot3])
        t1 = p1 * (c2 * c3) + p2 * (c3 * s1 * s2 - c1 * s3) - L * (c1 * c3 * s2 + s1 * s3)
        t2 = p1 * (c2 * s3) + p2 * (c1 * c3 + s1 * s2 * s3) - L * (-c3 * s1 + c1 * s2 * s3)
        t3 = p1 * s2 - p2 * (c2 * s1) + L * (c1 * c2)
        cos_alpha = L / np.sqrt(p1 * p1 + p2 * p2 + L * L)
        return t1, t2, t3, cos_alpha

    def arrays(self) -> dict[str, np.ndarray]:
        """Per-pixel ``tth`` [rad], ``q`` [1/nm], ``chi`` [rad, (-pi, pi]] and ``solid_angle``.

        ``solid_angle`` is pyFAI's relative one, ``cos(alpha)^3`` (1 at the PONI).
        """
        t1, t2, t3, cos_alpha = self._lab()
        tth = np.arctan2(np.sqrt(t1 * t1 + t2 * t2), t3)
        q = 4e-9 * np.pi * np.sin(tth / 2) / self.wavelength
        chi = np.arctan2(t1, t2)
        return {"tth": tth, "q": q, "chi": chi, "solid_angle": cos_alpha**3}

    def q_nm(self) -> np.ndarray:
        """Scattering vector modulus of every pixel centre [1/nm] (pyFAI's ``q_nm^-1``)."""
        return self.arrays()["q"]

    def chi(self) -> np.ndarray:
        """Azimuthal angle of every pixel centre [rad] (pyFAI's ``chi``)."""
        return self.arrays()["chi"]

    def polarization(
        self, factor: float, axis_offset: float = 0.0, arrays: dict | None = None
    ) -> np.ndarray:
        """pyFAI's polarization factor ``P`` of every pixel (images are multiplied by it).

        ``arrays``: the result of `arrays`, if already computed.
        """
        a = self.arrays() if arrays is None else arrays
        cos2tth = np.cos(a["tth"]) ** 2
        return 0.5 * (1 + cos2tth - factor * np.cos(2 * (a["chi"] + axis_offset)) * (1 - cos2tth))

    def to_dict(self) -> dict[str, float]:
        """The geometry as the slow-data keys sent in a train (``geometry.<name>``)."""
        d = asdict(self)
        shape = d.pop("shape")
        out = {f"geometry.{k}": float(v) for k, v in d.items()}
        out["geometry.energy"] = self.energy_kev
        out["geometry.shape"] = [int(shape[0]), int(shape[1])]
        return out

    @classmethod
    def from_dict(cls, values: dict) -> Geometry:
        """Inverse of `to_dict` (accepts the file spelling ``geometry.dist.value`` too)."""

        def get(name: str) -> object:
            for key in (f"geometry.{name}", f"geometry.{name}.value"):
                if key in values:
                    return values[key]
            raise KeyError(f"geometry.{name}")

        names = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "pixel1", "pixel2", "wavelength")
        kw = {k: float(get(k)) for k in names}
        shape = get("shape")
        return cls(**kw, shape=(int(shape[0]), int(shape[1])))


def write_poni(path: str | os.PathLike, geometry: Geometry) -> None:
    """Write ``geometry`` as a pyFAI PONI file (``poni_version: 2``).

    ``pyFAI.load(path)`` gives an integrator with the same geometry; the detector is a generic
    ``Detector`` with the pixel size and ``max_shape``.
    """
    g = geometry
    config = {"pixel1": g.pixel1, "pixel2": g.pixel2, "max_shape": [g.shape[0], g.shape[1]]}
    lines = [
        "# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis",
        "# Written by beamstream.simulate",
        "poni_version: 2",
        "Detector: Detector",
        f"Detector_config: {json.dumps(config)}",
        f"Distance: {g.dist!r}",
        f"Poni1: {g.poni1!r}",
        f"Poni2: {g.poni2!r}",
        f"Rot1: {g.rot1!r}",
        f"Rot2: {g.rot2!r}",
        f"Rot3: {g.rot3!r}",
        f"Wavelength: {g.wavelength!r}",
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
