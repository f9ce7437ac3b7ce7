"""A simulated hRIXS camera: sparse single photons along a curved, energy-dispersed line.

Photon energies are drawn from a few emission lines (Gaussian in energy). A photon of energy ``E``
lands at the curvature-corrected dispersive position ``y' = (E - intercept) / slope`` and at a
uniform random ``x``; its charge-cloud centre is ``y = y' + a x + b x^2`` (so the line of a single
energy follows ``y = y0 + a x + b x^2``, ``y0`` being the elastic line's ``y'``). The cloud is a
2-D Gaussian (``sigma`` px) integrated over the pixel areas, carrying ``E / 3.6 / 1.06`` ADU.
Frames are ``(frame, y, x)`` uint16 with a dark offset and Gaussian read noise; ``y`` (rows) is the
dispersive (energy) axis. Coordinates are pixel indices: pixel ``(i, j)`` covers
``[i - 1/2, i + 1/2) x [j - 1/2, j + 1/2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from beamstream.simulate._common import FIRST_TRAIN_ID, SimulatedDetector
from beamstream.simulate._noise import NORMAL_TABLE, deposit_photons, noisy_frames

__all__ = ["EmissionLine", "RixsTruth", "RixsSimulator", "adu_per_photon", "DEFAULT_LINES"]

#: eV per electron-hole pair in silicon, and electrons per ADU (algorithms.md 3.3)
EV_PER_PAIR = 3.6
ELECTRONS_PER_ADU = 1.06


def adu_per_photon(energy_ev: float | np.ndarray) -> float | np.ndarray:
    """Charge of one photon in ADU: ``E / 3.6 / 1.06`` (``E`` in eV)."""
    if np.ndim(energy_ev):
        return np.asarray(energy_ev, dtype=np.float64) / EV_PER_PAIR / ELECTRONS_PER_ADU
    return float(energy_ev) / EV_PER_PAIR / ELECTRONS_PER_ADU


@dataclass(frozen=True)
class EmissionLine:
    """One spectral feature: photons at ``incident + loss`` eV, Gaussian with ``width`` (sigma)."""

    loss: float
    width: float
    weight: float


#: an elastic line, a sharp loss feature and a broad charge-transfer band
DEFAULT_LINES: tuple[EmissionLine, ...] = (
    EmissionLine(0.0, 0.05, 0.4),
    EmissionLine(-1.5, 0.1, 0.35),
    EmissionLine(-6.0, 1.0, 0.25),
)


@dataclass(frozen=True)
class RixsTruth:
    """The ground truth of a `RixsSimulator`.

    Attributes
    ----------
    shape
        ``(ny, nx)`` of the camera (``y`` dispersive).
    incident_energy
        Incident photon energy [eV] (the elastic line).
    lines
        The spectral features.
    a, b, y0
        Curvature: a single energy lies on ``y = y0' + a x + b x^2``; ``y0`` is the elastic
        line's corrected position ``y'``.
    intercept, slope
        Energy calibration ``E = intercept + slope * y'`` with ``y' = y - (a x + b x^2)`` [eV].
    sigma
        Charge-cloud sigma [px].
    photons_per_frame
        Mean number of photons per frame (Poisson).
    dark_offset, read_noise
        ADU.
    """

    shape: tuple[int, int]
    incident_energy: float
    lines: tuple[EmissionLine, ...]
    a: float
    b: float
    y0: float
    intercept: float
    slope: float
    sigma: float
    photons_per_frame: float
    dark_offset: float
    read_noise: float

    def energy(self, y: np.ndarray | float, x: np.ndarray | float) -> np.ndarray:
        """Photon energy [eV] of a position: ``intercept + slope * (y - a x - b x^2)``."""
        x = np.asarray(x, dtype=np.float64)
        return self.intercept + self.slope * (np.asarray(y) - self.a * x - self.b * x * x)

    def y_of(self, energy: np.ndarray | float, x: np.ndarray | float) -> np.ndarray:
        """Row position of a photon of ``energy`` at column ``x`` (inverse of `energy`)."""
        x = np.asarray(x, dtype=np.float64)
        return (np.asarray(energy) - self.intercept) / self.slope + self.a * x + self.b * x * x

    @property
    def adu_per_photon(self) -> float:
        """ADU of an elastic photon (``incident_energy / 3.6 / 1.06``)."""
        return float(adu_per_photon(self.incident_energy))


class RixsSimulator(SimulatedDetector):
    """Simulated hRIXS camera ``SCS_HRIXS_DET/CAM/CAMERA:daqOutput``: uint16 ``(frame, y, x)``.

    Parameters
    ----------
    seed, frames, first_train_id
        See `SimulatedDetector`.
    shape
        ``(ny, nx)`` camera size (default 2048 x 2048).
    photons
        Mean photons per frame (Poisson distributed).
    incident_energy
        eV (default 930, Cu L3).
    lines
        Spectral features (energy loss, width, weight).
    a, b
        Curvature coefficients (linear, quadratic) [px/px, px/px^2].
    y0
        Elastic line position ``y'`` [px] (default 0.7 ny).
    slope
        Dispersion [eV/px] (default: 37.7 eV over the camera height).
    sigma
        Charge-cloud sigma [px].
    dark_offset, read_noise
        ADU.
    """

    detector = "rixs"
    source = "SCS_HRIXS_DET/CAM/CAMERA:daqOutput"
    image_key = "data.image.pixels"
    mono_source = "SA3_XTD10_MONO/MDL/PHOTON_ENERGY"
    mono_key = "actualEnergy"

    def __init__(
        self,
        seed: int = 0,
        frames: int = 1,
        first_train_id: int = FIRST_TRAIN_ID,
        *,
        shape: tuple[int, int] = (2048, 2048),
        photons: float = 1000.0,
        incident_energy: float = 930.0,
        lines: tuple[EmissionLine, ...] = DEFAULT_LINES,
        a: float = 0.024,
        b: float = -3.7e-7,
        y0: float | None = None,
        slope: float | None = None,
        sigma: float = 0.45,
        dark_offset: float = 100.0,
        read_noise: float = 3.0,
    ):
        super().__init__(seed, frames, first_train_id)
        ny, nx = (int(n) for n in shape)
        if ny < 8 or nx < 8:
            raise ValueError(f"shape: expected at least 8 x 8 pixels, got {shape!r}")
        slope = 37.7 / ny if slope is None else float(slope)
        y0 = 0.7 * ny if y0 is None else float(y0)
        self._truth = RixsTruth(
            (ny, nx),
            float(incident_energy),
            tuple(lines),
            float(a),
            float(b),
            y0,
            float(incident_energy) - slope * y0,
            slope,
            float(sigma),
            float(photons),
            float(dark_offset),
            float(read_noise),
        )
        weights = np.array([line.weight for line in lines], dtype=np.float64)
        self._weights = weights / weights.sum()
        self._radius = max(1, int(np.ceil(4.0 * sigma)))
        self._offset = np.full((1, ny * nx), dark_offset, np.float32)
        self._sigma = np.full((1, ny * nx), read_noise, np.float32)

    @property
    def truth(self) -> RixsTruth:
        """The train-independent ground truth (`RixsTruth`)."""
        return self._truth

    def train_truth(self, train_id: int) -> dict[str, Any]:
        """The photons of a train.

        Returns
        -------
        dict
            Arrays over photons: ``frame`` (int64), ``y``, ``x`` (charge-cloud centres, px),
            ``y_corrected`` (``y - a x - b x^2``), ``energy`` [eV], ``adu``; ``line`` (index into
            ``truth.lines``); and ``count`` (photons per frame). Only photons whose centre lies
            on the camera are kept.
        """
        t = self._truth
        ny, nx = t.shape
        rng = self.rng(train_id, 1)
        counts = rng.poisson(t.photons_per_frame, self.frames)
        n = int(counts.sum())
        frame = np.repeat(np.arange(self.frames), counts)
        line = rng.choice(len(t.lines), size=n, p=self._weights)
        loss = np.array([ln.loss for ln in t.lines])[line]
        width = np.array([ln.width for ln in t.lines])[line]
        energy = t.incident_energy + loss + width * rng.standard_normal(n)
        x = rng.uniform(-0.5, nx - 0.5, n)
        y = t.y_of(energy, x)
        keep = (y >= -0.5) & (y < ny - 0.5)
        frame, line, energy, x, y = frame[keep], line[keep], energy[keep], x[keep], y[keep]
        return {
            "frame": frame,
            "y": y,
            "x": x,
            "y_corrected": y - t.a * x - t.b * x * x,
            "energy": energy,
            "adu": adu_per_photon(energy),
            "line": line,
            "count": np.bincount(frame, minlength=self.frames),
        }

    def _train_data(self, train_id: int) -> tuple[dict, dict]:
        t = self._truth
        ny, nx = t.shape
        photons = self.train_truth(train_id)
        out = np.empty((self.frames, ny * nx), np.uint16)
        charge = np.zeros((1, ny, nx), np.float32)
        seed = self.noise_seed(train_id)
        starts = np.concatenate([[0], np.cumsum(photons["count"])])
        one = np.zeros(1, np.int64)
        unit = np.ones(1, np.float32)
        for f in range(self.frames):
            sel = slice(starts[f], starts[f + 1])
            charge[:] = 0.0
            deposit_photons(
                charge[0],
                photons["y"][sel],
                photons["x"][sel],
                photons["adu"][sel],
                t.sigma,
                self._radius,
            )
            noisy_frames(
                out[f : f + 1],
                self._offset,
                charge.reshape(1, -1),
                self._sigma,
                one,
                unit,
                np.uint64((seed + f * 0x9E3779B97F4A7C15) % 2**64),
                0.0,
                65535.0,
                NORMAL_TABLE,
            )
        data = {
            self.source: {
                self.image_key: out.reshape(self.frames, ny, nx),
                "data.trainId": np.full(self.frames, train_id, dtype=np.uint64),
            },
            self.mono_source: {self.mono_key: t.incident_energy},
        }
        return data, {self.source: {self.image_key: ("frame", "y", "x")}}
