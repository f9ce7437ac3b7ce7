"""Benchmark: the cost of per-frame attributes + scan maps on top of q-phi integration.

Runs the pipeline of ``config/scan_map.toml`` (q-phi with per-frame I(q) and I(phi, q), five
attributes, the scan map) and the same pipeline cut after its q-phi integrator, on the same
trains of the SAXS simulator's raster scan (1 Mpix frames): every train goes through both, back
to back, ``--repeat`` times, and per train the fastest time of each is kept. The requirement is
``overhead = with_maps / qphi - 1 <= 0.10``.

Usage: ``python benchmarks/maps.py [--json PATH] [--scan 6x8] [--frames 1] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_json  # noqa: E402

from beamstream.config import load_config  # noqa: E402
from beamstream.processors.pipeline import Pipeline  # noqa: E402
from beamstream.simulate import SaxsSimulator  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "scan_map.toml"


def _time(pipeline: Pipeline, train, states) -> float:
    t0 = time.perf_counter()
    pipeline.process(train, states)
    return time.perf_counter() - t0


def measure(scan: tuple[int, int], frames: int, repeat: int) -> dict[str, float]:
    """Best ms/frame of the q-phi-only and the full pipeline, and the relative overhead.

    Each train is processed by both pipelines back to back, ``repeat`` times; per train the
    fastest time of each is kept (robust to load from other processes on a shared machine), and
    the kept times are summed over the trains.
    """
    cfg = load_config(CONFIG)
    qphi_only = dataclasses.replace(cfg, processors=cfg.processors[:1])
    full, base = Pipeline(cfg), Pipeline(qphi_only)
    sim = SaxsSimulator(seed=0, frames=frames, scan=scan)
    trains = [sim.train(sim.first_train_id + k) for k in range(scan[0] * scan[1])]
    nframes = len(trains) * frames
    s_base, s_full = base.empty_states(), full.empty_states()
    for t in trains[:2]:  # warm-up: numba kernels, pixel tables
        base.process(t, s_base)
        full.process(t, s_full)
    best_b = np.full(len(trains), np.inf)
    best_f = np.full(len(trains), np.inf)
    for r in range(repeat):
        for i, t in enumerate(trains):
            if (i + r) % 2:  # alternate which goes first
                best_b[i] = min(best_b[i], _time(base, t, s_base))
                best_f[i] = min(best_f[i], _time(full, t, s_full))
            else:
                best_f[i] = min(best_f[i], _time(full, t, s_full))
                best_b[i] = min(best_b[i], _time(base, t, s_base))
    full.finalize(s_full)  # finalizing is per snapshot, not per frame: not counted
    qphi_ms = 1e3 * best_b.sum() / nframes
    maps_ms = 1e3 * best_f.sum() / nframes
    return {
        "qphi_ms_per_frame": qphi_ms,
        "with_maps_ms_per_frame": maps_ms,
        "overhead": maps_ms / qphi_ms - 1.0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the result as JSON to this path")
    ap.add_argument("--scan", default="6x8", help="NYxNX scan points (one train each)")
    ap.add_argument("--frames", type=int, default=1, help="frames per train")
    ap.add_argument("--repeat", type=int, default=7, help="interleaved rounds (best kept)")
    args = ap.parse_args(argv)
    ny, nx = (int(v) for v in args.scan.lower().split("x"))
    res = measure((ny, nx), args.frames, args.repeat)
    print(
        f"q-phi only       {res['qphi_ms_per_frame']:8.3f} ms/frame\n"
        f"+ attrs + maps   {res['with_maps_ms_per_frame']:8.3f} ms/frame\n"
        f"overhead         {100 * res['overhead']:8.2f} %  (requirement: <= 10 %)"
    )
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
