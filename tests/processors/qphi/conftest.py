"""Shared fixtures of the q-phi tests: a small flat detector, its pyFAI twin, frames, compile."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.base import TrainView
from beamstream.processors.qphi.integrator import QPhiIntegrator
from beamstream.streamer.train import Train

SHAPE = (256, 256)
PIXEL = 1e-4
#: tilted geometry (all three rotations non-zero); q spans ~0.1..12 nm^-1
GEOM = dict(
    dist=0.1, poni1=0.0131, poni2=0.0117, rot1=0.03, rot2=-0.04, rot3=0.2, wavelength=1.0e-10
)


def geometry_table(**over) -> dict:
    """Our config table of the test detector."""
    return {**GEOM, "pixel1": PIXEL, "pixel2": PIXEL, "shape": list(SHAPE), **over}


def pyfai_ai(**over):
    """pyFAI's AzimuthalIntegrator of the same detector."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    g = {**GEOM, **over}
    det = Detector(pixel1=PIXEL, pixel2=PIXEL, max_shape=SHAPE)
    return AzimuthalIntegrator(detector=det, **g)


def static_mask() -> np.ndarray:
    """A module gap, a dead column and a few hot pixels (< 50 % masked: pyFAI's legacy trap)."""
    m = np.zeros(SHAPE, np.int8)
    m[120:128, :] = 1
    m[:, 40] = 1
    m[[5, 77, 200], [9, 150, 31]] = 1
    return m


def poisson_frames(n: int, seed: int = 0, lam: float = 50.0) -> np.ndarray:
    """Integer-valued float32 frames with a ring and an azimuthal modulation."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    r = np.hypot(yy - 131, xx - 117)
    base = lam * (1 + 2 * np.exp(-((r - 70) ** 2) / 30.0)) * (1 + 0.3 * np.cos(np.arctan2(yy, xx)))
    return rng.poisson(base, size=(n, *SHAPE)).astype(np.float32)


def view_of(
    frames: np.ndarray,
    slot=None,
    slots=("image",),
    key: float = 0.0,
    train_id: int = 1,
    data: dict | None = None,
) -> TrainView:
    """A TrainView holding ``frames`` (all accepted into slot 0 unless ``slot`` is given)."""
    fs = np.zeros(len(frames), np.int64) if slot is None else np.asarray(slot, np.int64)
    return TrainView(
        Train(train_id, data=data or {}),
        frames=frames,
        frame_slot=fs,
        slots=tuple(slots),
        scan_key=key,
    )


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    """Pay the numba compile (or cache load) of both kernels once per module."""
    small = np.ones((2, 8, 8), np.float32)
    for split in ("no", "bbox"):
        qi = QPhiIntegrator(
            geometry={
                **GEOM,
                "pixel1": 1e-3,
                "pixel2": 1e-3,
                "shape": [8, 8],
                "poni1": 0.004,
                "poni2": 0.004,
            },
            npt_q=4,
            npt_phi=4,
            split=split,
        )
        qi.update(qi.empty(), view_of(small))
