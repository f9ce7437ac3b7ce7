"""A simulated SAXS/WAXS detector: powder rings at known q on a 1 Mpix flat detector.

The noise-free image is ``flux * (background(q) + sum_n ring_n(q) * aniso(chi)) * SA * P`` with
pyFAI's q, chi, relative solid angle ``SA`` and polarization ``P`` for the stated `Geometry`
(algorithms.md 2.1); each frame adds Poisson-like noise (Gaussian with variance = mean, rounded
to whole counts). In raster-scan mode each train is one point of a snake scan over a sample whose
scattering strength, orientation and anisotropy vary with known truth maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from beamstream.simulate._common import FIRST_TRAIN_ID, SimulatedDetector
from beamstream.simulate._noise import NORMAL_TABLE, poisson_like
from beamstream.simulate.geometry import Geometry

__all__ = ["Ring", "RasterScan", "SaxsTruth", "SaxsSimulator", "AGBH_Q1", "DEFAULT_RINGS"]

#: silver behenate's first order [1/nm] (d = 58.38 A)
AGBH_Q1 = 1.076


@dataclass(frozen=True)
class Ring:
    """One powder ring: Gaussian in q.

    Parameters
    ----------
    q
        Centre [1/nm].
    amplitude
        Peak height [counts per frame, before solid angle and polarization].
    width
        Gaussian sigma [1/nm].
    """

    q: float
    amplitude: float
    width: float = 0.015


#: silver-behenate-like orders 1-5 plus two rings of another phase
DEFAULT_RINGS: tuple[Ring, ...] = (
    Ring(1 * AGBH_Q1, 400.0),
    Ring(2 * AGBH_Q1, 120.0),
    Ring(3 * AGBH_Q1, 200.0),
    Ring(4 * AGBH_Q1, 60.0),
    Ring(5 * AGBH_Q1, 40.0),
    Ring(1.55, 80.0, 0.025),
    Ring(2.75, 100.0, 0.03),
)


@dataclass(frozen=True)
class RasterScan:
    """A snake raster scan: one train per point, the fast axis reversing on every other row.

    Point ``k`` (``k = train index % (ny * nx)``) is on row ``iy = k // nx`` and column
    ``ix = k % nx`` (even rows) or ``nx - 1 - k % nx`` (odd rows). The motors report
    ``x = x0 + ix * dx`` and ``y = y0 + iy * dy`` [mm] plus Gaussian encoder jitter.
    """

    shape: tuple[int, int]
    dx: float = 0.05
    dy: float = 0.05
    x0: float | None = None
    y0: float | None = None
    jitter: float = 0.0002
    fast_source: str = "SA1_EXP_SAMPLE/MOTOR/SCAN_X"
    slow_source: str = "SA1_EXP_SAMPLE/MOTOR/SCAN_Y"
    key: str = "actualPosition"

    @property
    def origin(self) -> tuple[float, float]:
        """``(x0, y0)``: the first point (centred on 0 unless given) [mm]."""
        ny, nx = self.shape
        x0 = -(nx - 1) * self.dx / 2 if self.x0 is None else self.x0
        y0 = -(ny - 1) * self.dy / 2 if self.y0 is None else self.y0
        return x0, y0

    def point(self, index: int) -> tuple[int, int]:
        """``(iy, ix)`` of the scan point of a train index."""
        ny, nx = self.shape
        k = int(index) % (ny * nx)
        iy, ix = divmod(k, nx)
        return iy, (ix if iy % 2 == 0 else nx - 1 - ix)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Nominal motor positions: ``x`` of every column and ``y`` of every row [mm]."""
        x0, y0 = self.origin
        xs = np.round(x0 + self.dx * np.arange(self.shape[1]), 9)
        return xs, np.round(y0 + self.dy * np.arange(self.shape[0]), 9)

    def maps(self) -> dict[str, np.ndarray]:
        """Truth maps ``(ny, nx)``: ``strength``, ``orientation`` [deg], ``anisotropy``.

        On normalised coordinates ``u, v`` in [0, 1] (columns, rows), ``r = |(u, v) - 1/2|``:
        strength ``0.1 + 0.9 exp(-r^2 / 0.125)``, orientation ``(atan2(v-1/2, u-1/2) + 90 deg)
        mod 180`` (rings brightest at ``chi = orientation``, tangential fibres), anisotropy
        ``0.8 min(1, 2 r)``.
        """
        ny, nx = self.shape
        u = (np.arange(nx) / (nx - 1) if nx > 1 else np.full(1, 0.5))[None, :]
        v = (np.arange(ny) / (ny - 1) if ny > 1 else np.full(1, 0.5))[:, None]
        du, dv = u - 0.5, v - 0.5
        r = np.hypot(du, dv)
        return {
            "strength": 0.1 + 0.9 * np.exp(-(r**2) / 0.125),
            "orientation": np.mod(np.degrees(np.arctan2(dv, du)) + 90.0, 180.0),
            "anisotropy": 0.8 * np.minimum(1.0, 2.0 * r),
        }


@dataclass(frozen=True)
class SaxsTruth:
    """The ground truth of a `SaxsSimulator`.

    Attributes
    ----------
    geometry
        The detector geometry (also sent in every train, and as a PONI file by `write_poni`).
    rings
        The rings (q [1/nm], amplitude, width).
    background
        ``(b0, b1, qb)``: background ``b0 + b1 exp(-q / qb)`` [counts per frame].
    flux
        Overall scale of the image.
    polarization_factor
        pyFAI polarization factor applied (None: none).
    expected
        ``(y, x)`` float32 noise-free expected counts per frame (isotropic sample, strength 1).
    scan
        The `RasterScan`, or None.
    maps
        The scan's truth maps (`RasterScan.maps`), or None.
    """

    geometry: Geometry
    rings: tuple[Ring, ...]
    background: tuple[float, float, float]
    flux: float
    polarization_factor: float | None
    expected: np.ndarray = field(repr=False)
    scan: RasterScan | None = None
    maps: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def profile(self, q: np.ndarray | float, with_background: bool = True) -> np.ndarray:
        """The radial model ``I(q)`` [counts per frame, before solid angle and polarization]."""
        q = np.asarray(q, dtype=np.float64)
        out = np.zeros_like(q)
        for ring in self.rings:
            out += ring.amplitude * np.exp(-0.5 * ((q - ring.q) / ring.width) ** 2)
        if with_background:
            out += self.background_profile(q) / self.flux
        return self.flux * out

    def background_profile(self, q: np.ndarray | float) -> np.ndarray:
        """The background part of `profile`: ``flux * (b0 + b1 exp(-q / qb))``."""
        b0, b1, qb = self.background
        return self.flux * (b0 + b1 * np.exp(-np.asarray(q, dtype=np.float64) / qb))


class SaxsSimulator(SimulatedDetector):
    """Simulated 1 Mpix SAXS detector with powder rings; float32 ``(frame, y, x)`` frames.

    Parameters
    ----------
    seed, frames, first_train_id
        See `SimulatedDetector`.
    geometry
        Detector geometry (default: 1024 x 1024, 75 um pixels, 0.6 m, 12 keV, slight tilts).
    rings
        Powder rings (default `DEFAULT_RINGS`).
    background
        ``(b0, b1, qb)`` of the background ``b0 + b1 exp(-q / qb)``.
    flux
        Scale of all intensities.
    polarization_factor
        pyFAI polarization factor multiplied into the image (None: unpolarized, no factor).
    scan
        ``(ny, nx)`` for a raster scan (one train per point, snake order), a `RasterScan`, or None.
    """

    detector = "saxs"
    source = "SA1_SIM_SAXS/DET/EIGER1M:daqOutput"
    image_key = "data.image.pixels"

    def __init__(
        self,
        seed: int = 0,
        frames: int = 1,
        first_train_id: int = FIRST_TRAIN_ID,
        *,
        geometry: Geometry | None = None,
        rings: tuple[Ring, ...] = DEFAULT_RINGS,
        background: tuple[float, float, float] = (3.0, 40.0, 0.4),
        flux: float = 1.0,
        polarization_factor: float | None = 0.99,
        scan: tuple[int, int] | RasterScan | None = None,
    ):
        super().__init__(seed, frames, first_train_id)
        self.geometry = geometry or Geometry()
        if scan is not None and not isinstance(scan, RasterScan):
            ny, nx = (int(n) for n in scan)
            if ny < 1 or nx < 1:
                raise ValueError(f"scan: expected (ny, nx) >= 1, got {scan!r}")
            scan = RasterScan((ny, nx))
        a = self.geometry.arrays()
        q, chi = a["q"], a["chi"]
        factor = a["solid_angle"]
        if polarization_factor is not None:
            factor = factor * self.geometry.polarization(polarization_factor, arrays=a)
        truth = SaxsTruth(
            self.geometry,
            tuple(rings),
            tuple(background),
            float(flux),
            polarization_factor,
            np.empty(0, np.float32),  # filled in below, from the model
            scan,
            scan.maps() if scan is not None else None,
        )
        rings_img = truth.profile(q, with_background=False) * factor
        bg_img = truth.background_profile(q) * factor
        expected = (bg_img + rings_img).astype(np.float32)
        self._truth = replace(truth, expected=expected)
        if scan is not None:
            self._bg = bg_img.astype(np.float32)
            self._rings = rings_img.astype(np.float32)
            self._rings_c = (rings_img * np.cos(2 * chi)).astype(np.float32)
            self._rings_s = (rings_img * np.sin(2 * chi)).astype(np.float32)
        self._static = self.geometry.to_dict()

    @property
    def truth(self) -> SaxsTruth:
        """The train-independent ground truth (`SaxsTruth`)."""
        return self._truth

    def train_truth(self, train_id: int) -> dict[str, Any]:
        """Per-train truth: in scan mode ``point`` ``(iy, ix)``, ``x``, ``y`` (nominal, mm),
        ``strength``, ``orientation`` [deg], ``anisotropy``; always ``frames``."""
        out: dict[str, Any] = {"frames": self.frames}
        scan = self._truth.scan
        if scan is not None:
            iy, ix = scan.point(self.train_index(train_id))
            xs, ys = scan.positions()
            m = self._truth.maps
            out.update(point=(iy, ix), x=float(xs[ix]), y=float(ys[iy]))
            out.update({k: float(v[iy, ix]) for k, v in m.items()})
        return out

    def expected_image(self, train_id: int) -> np.ndarray:
        """The noise-free expected counts per frame of a train, ``(y, x)`` float32."""
        if self._truth.scan is None:
            return self._truth.expected
        t = self.train_truth(train_id)
        phi = np.radians(t["orientation"])
        a, s = t["anisotropy"], t["strength"]
        c2, s2 = np.float32(s * a * np.cos(2 * phi)), np.float32(s * a * np.sin(2 * phi))
        return self._bg + np.float32(s) * self._rings + c2 * self._rings_c + s2 * self._rings_s

    def _train_data(self, train_id: int) -> tuple[dict, dict]:
        ny, nx = self.geometry.shape
        mean = self.expected_image(train_id)
        frames = np.empty((self.frames, ny * nx), np.float32)
        poisson_like(
            frames,
            mean.reshape(-1),
            np.uint64(self.noise_seed(train_id)),
            NORMAL_TABLE,
        )
        det = {
            self.image_key: frames.reshape(self.frames, ny, nx),
            "data.frameNumber": np.arange(self.frames, dtype=np.uint32),
            "data.trainId": np.full(self.frames, train_id, dtype=np.uint64),
            **self._static,
        }
        data: dict[str, dict[str, Any]] = {self.source: det}
        scan = self._truth.scan
        if scan is not None:
            t = self.train_truth(train_id)
            jitter = self.rng(train_id, 3).normal(0.0, scan.jitter, 2) if scan.jitter else (0, 0)
            data[scan.fast_source] = {scan.key: t["x"] + float(jitter[0])}
            data[scan.slow_source] = {scan.key: t["y"] + float(jitter[1])}
        dims = {self.source: {self.image_key: ("frame", "y", "x")}}
        return data, dims
