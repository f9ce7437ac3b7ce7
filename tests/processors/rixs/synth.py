"""Synthetic single-photon frames with known truth for the RIXS tests.

A photon at sub-pixel position ``(y, x)`` (pixel centres at integers) deposits ``adu`` ADU as a 2-D
Gaussian charge cloud of width ``sigma``, integrated over each pixel's area with erf differences.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from beamstream.processors.base import TrainView
from beamstream.streamer.train import Train

#: ADU per photon at 930 eV (E / 3.6 / 1.06)
ADU_930 = 930.0 / 3.6 / 1.06


def pixel_fractions(centre: float, idx: np.ndarray, sigma: float) -> np.ndarray:
    """Fraction of a 1-D Gaussian (``centre``, ``sigma``) falling in pixels ``idx``."""
    s = sigma * math.sqrt(2.0)
    return 0.5 * (erf((idx + 0.5 - centre) / s) - erf((idx - 0.5 - centre) / s))


def render(
    shape: tuple[int, int],
    positions: np.ndarray,
    adu: float = ADU_930,
    sigma: float | np.ndarray = 0.45,
) -> np.ndarray:
    """Float64 image with one charge cloud per row ``(y, x)`` of ``positions``."""
    img = np.zeros(shape)
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (len(positions),))
    for (y, x), s in zip(np.asarray(positions, dtype=np.float64), sig, strict=True):
        iy = np.arange(int(np.floor(y)) - 4, int(np.floor(y)) + 6)
        ix = np.arange(int(np.floor(x)) - 4, int(np.floor(x)) + 6)
        iy = iy[(iy >= 0) & (iy < shape[0])]
        ix = ix[(ix >= 0) & (ix < shape[1])]
        img[np.ix_(iy, ix)] += adu * np.outer(pixel_fractions(y, iy, s), pixel_fractions(x, ix, s))
    return img


def isolated_positions(
    rng: np.random.Generator,
    n: int,
    shape: tuple[int, int],
    min_sep: float = 6.0,
    border: float = 4.0,
) -> np.ndarray:
    """``n`` random sub-pixel positions, ``min_sep`` apart and ``border`` from the edges."""
    out: list[tuple[float, float]] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n:
            raise RuntimeError("frame too crowded for the requested photons")
        p = rng.uniform((border, border), (shape[0] - 1 - border, shape[1] - 1 - border))
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 >= min_sep**2 for q in out):
            out.append((float(p[0]), float(p[1])))
    return np.array(out)


def photon_frame(
    rng: np.random.Generator,
    n: int,
    shape: tuple[int, int] = (256, 256),
    noise: float = 2.5,
    sigma: tuple[float, float] = (0.3, 0.6),
    adu: float = ADU_930,
) -> tuple[np.ndarray, np.ndarray]:
    """A frame of ``n`` isolated photons (cloud widths uniform in ``sigma``) plus read noise."""
    pos = isolated_positions(rng, n, shape)
    widths = rng.uniform(sigma[0], sigma[1], n)
    img = render(shape, pos, adu, widths) + rng.normal(0.0, noise, shape)
    return img, pos


def view(frames: np.ndarray, scan_key: float = 0.0, **kw) -> TrainView:
    """A TrainView of ``frames`` (read-only, as received from the wire)."""
    frames = np.array(frames)
    if frames.ndim == 2:
        frames = frames[None]
    frames.flags.writeable = False
    return TrainView(Train(kw.pop("train_id", 1)), frames=frames, scan_key=scan_key, **kw)


def match(truth: np.ndarray, y: np.ndarray, x: np.ndarray, radius: float = 1.0) -> np.ndarray:
    """For each true position, the index of the nearest hit within ``radius`` (or -1)."""
    out = np.full(len(truth), -1)
    if len(y) == 0:
        return out
    for k, (ty, tx) in enumerate(truth):
        d2 = (y - ty) ** 2 + (x - tx) ** 2
        i = int(np.argmin(d2))
        if d2[i] <= radius**2:
            out[k] = i
    return out
