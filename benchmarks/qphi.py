"""Benchmark: beamstream q-phi integration vs pyFAI on the same 1 Mpix float32 frames.

2-D: 500 q x 360 phi; 1-D: 1000 q bins; no pixel splitting, solid angle + polarization, a static
mask. pyFAI runs ``integrate2d`` / ``integrate1d`` with ``method=("no", "csr", "cython")`` (its CSR
matrix is built in a warm-up call, not timed), frame by frame; beamstream's `QPhiIntegrator`
updates a state with trains of ``--frames`` frames (its tables are built in a warm-up train, not
timed). The two are timed in interleaved rounds and the best round of each is kept. Both use
all cores they find (pyFAI's CSR engine is OpenMP-parallel; beamstream's kernels use numba
threads). Prints ms/frame and ratios; ``--json PATH`` writes them.

Also the set-up of bounding-box pixel splitting on a 2.56 Mpix detector against pyFAI's
``("bbox", "csr", "cython")`` set-up (key ``bbox_setup_ratio_vs_pyfai``: our time / pyFAI's; goal
<= 2; ``--bbox-only`` runs just that).

Usage: ``python benchmarks/qphi.py [--json PATH] [--frames N] [--repeat R] [--size 1024]
[--bbox-size 1600] [--bbox-only]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

from beamstream.processors.base import TrainView
from beamstream.processors.qphi.integrator import QPhiIntegrator
from beamstream.streamer.train import Train

GEOM = dict(
    dist=0.2,
    poni1=0.05,
    poni2=0.055,
    rot1=0.01,
    rot2=-0.02,
    rot3=0.0,
    pixel1=1e-4,
    pixel2=1e-4,
    wavelength=1e-10,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

Q_RANGE = (0.5, 25.0)


def _frames(size: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - 0.5 * size, xx - 0.55 * size)
    base = 200.0 * np.exp(-r / (0.3 * size)) + 50.0 * np.exp(-((r - 0.25 * size) ** 2) / 50.0)
    frames = rng.poisson(base[None] + 5.0, size=(n, size, size)).astype(np.float32)
    mask = np.zeros((size, size), np.int8)
    mask[size // 2 - 8 : size // 2 + 8, :] = 1  # a module gap
    return frames, mask


def _best_interleaved(ours, ref, nframes: int, repeat: int) -> tuple[float, float]:
    """Best time per frame [ms] of ``ours()`` and ``ref()`` over ``repeat`` interleaved rounds
    (interleaving exposes both to the same background load; the best round is kept)."""
    ours()  # warm-up: numba compile (cached) and table build
    ref()  # warm-up: pyFAI's CSR build
    best_o = best_r = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        best_o = min(best_o, time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref()
        best_r = min(best_r, time.perf_counter() - t0)
    return 1e3 * best_o / nframes, 1e3 * best_r / nframes


def run(size: int = 1024, nframes: int = 16, repeat: int = 5) -> dict[str, float]:
    """Run both engines and return the timings (ms per frame) and ratios."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    frames, mask = _frames(size, nframes)
    shape = (size, size)
    g = {k: v for k, v in GEOM.items()}
    det = Detector(pixel1=g["pixel1"], pixel2=g["pixel2"], max_shape=shape)
    ai = AzimuthalIntegrator(
        dist=g["dist"],
        poni1=g["poni1"],
        poni2=g["poni2"],
        rot1=g["rot1"],
        rot2=g["rot2"],
        rot3=g["rot3"],
        detector=det,
        wavelength=g["wavelength"],
    )
    common = dict(
        geometry={**g, "shape": list(shape)},
        mask=mask,
        q_range=Q_RANGE,
        polarization_factor=0.99,
        error_model="none",
    )
    q2 = QPhiIntegrator(npt_q=500, npt_phi=360, outputs=["iqphi"], **common)
    q1 = QPhiIntegrator(npt_q=1000, outputs=["iq"], **common)
    kw = dict(
        unit="q_nm^-1",
        method=("no", "csr", "cython"),
        mask=mask,
        radial_range=Q_RANGE,
        polarization_factor=0.99,
        correctSolidAngle=True,
    )

    state2, state1 = q2.empty(), q1.empty()
    view = TrainView(Train(0), frames=frames, frame_slot=np.zeros(len(frames), np.int64))
    ours2, ref2 = _best_interleaved(
        lambda: q2.update(state2, view),
        lambda: [ai.integrate2d(f, 500, 360, azimuth_range=(-180, 180), **kw) for f in frames],
        len(frames),
        repeat,
    )
    ours1, ref1 = _best_interleaved(
        lambda: q1.update(state1, view),
        lambda: [ai.integrate1d(f, 1000, **kw) for f in frames],
        len(frames),
        repeat,
    )
    return {
        "ms_per_frame_2d": ours2,
        "pyfai_ms_per_frame_2d": ref2,
        "ratio_2d": ref2 / ours2,
        "ms_per_frame_1d": ours1,
        "pyfai_ms_per_frame_1d": ref1,
        "ratio_1d": ref1 / ours1,
    }


def _pyfai_integrator(size: int):  # noqa: ANN202 - a pyFAI AzimuthalIntegrator
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    g = GEOM
    det = Detector(pixel1=g["pixel1"], pixel2=g["pixel2"], max_shape=(size, size))
    geometry = {k: g[k] for k in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3")}
    return AzimuthalIntegrator(detector=det, wavelength=g["wavelength"], **geometry)


def bbox_setup(size: int = 1600, repeat: int = 3) -> dict[str, float]:
    """Seconds to set up bounding-box pixel splitting (500 q x 360 phi) on a fresh integrator:
    beamstream's table build (geometry, pixel boxes, CSC table) vs pyFAI's first
    ``integrate2d(method=("bbox", "csr", "cython"))`` (geometry, CSR matrix, one frame), each on
    a new integrator, interleaved; the best of ``repeat`` rounds of each."""
    from beamstream.processors.qphi import bintable

    frames, mask = _frames(size, 1)
    view = TrainView(Train(0), frames=frames, frame_slot=np.zeros(1, np.int64))
    common = dict(
        geometry={**GEOM, "shape": [size, size]},
        mask=mask,
        q_range=Q_RANGE,
        polarization_factor=0.99,
        error_model="none",
        split="bbox",
    )
    kw = dict(
        unit="q_nm^-1",
        method=("bbox", "csr", "cython"),
        mask=mask,
        radial_range=Q_RANGE,
        azimuth_range=(-180, 180),
        polarization_factor=0.99,
        correctSolidAngle=True,
    )

    def ours() -> float:
        bintable.clear_cache()
        t0 = time.perf_counter()
        q = QPhiIntegrator(npt_q=500, npt_phi=360, outputs=["iqphi"], **common)
        q.update(q.empty(), view)
        return time.perf_counter() - t0

    def ref() -> float:
        t0 = time.perf_counter()
        _pyfai_integrator(size).integrate2d(frames[0], 500, 360, **kw)
        return time.perf_counter() - t0

    ours()  # numba compile (or cache load) of the table and integration kernels
    times_o, times_r = [], []
    for _ in range(repeat):
        times_o.append(ours())
        times_r.append(ref())
    o, r = min(times_o), min(times_r)
    return {"bbox_setup_s": o, "pyfai_bbox_setup_s": r, "bbox_setup_ratio_vs_pyfai": o / r}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the results as JSON to this path")
    p.add_argument("--frames", type=int, default=16, help="frames per train (default 16)")
    p.add_argument("--repeat", type=int, default=5, help="timed rounds, best kept")
    p.add_argument("--size", type=int, default=1024, help="detector side in pixels")
    p.add_argument("--bbox-size", type=int, default=1600, help="side for the bbox set-up (1600)")
    p.add_argument("--bbox-only", action="store_true", help="only the bbox set-up timing")
    args = p.parse_args(argv)
    box = bbox_setup(args.bbox_size, args.repeat)
    print(
        f"bbox set-up {args.bbox_size}x{args.bbox_size} ({args.bbox_size**2 / 1e6:.2f} Mpix), "
        f"500q x 360phi: beamstream {box['bbox_setup_s']:.2f} s, pyFAI bbox/csr "
        f"{box['pyfai_bbox_setup_s']:.2f} s, ratio {box['bbox_setup_ratio_vs_pyfai']:.2f} "
        "(goal <= 2)"
    )
    if args.bbox_only:
        if args.json:
            write_json(args.json, box)
        return 0
    res = {**run(args.size, args.frames, args.repeat), **box}
    print(
        f"cores: {os.cpu_count()}, numba threads: {numba.get_num_threads()}, "
        f"frames: {args.frames} x {args.size}x{args.size} float32"
    )
    print(
        f"2-D 500q x 360phi: beamstream {res['ms_per_frame_2d']:.2f} ms/frame, "
        f"pyFAI no/csr {res['pyfai_ms_per_frame_2d']:.2f} ms/frame, "
        f"ratio {res['ratio_2d']:.1f}x"
    )
    print(
        f"1-D 1000q:         beamstream {res['ms_per_frame_1d']:.2f} ms/frame, "
        f"pyFAI no/csr {res['pyfai_ms_per_frame_1d']:.2f} ms/frame, "
        f"ratio {res['ratio_1d']:.1f}x"
    )
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
