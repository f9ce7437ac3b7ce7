"""Benchmark: `ScanBinner` throughput against a numpy copy of the same bytes.

Frames: 128 x 512 uint16 (one DSSC module), 100 frames per train, pattern ["pumped", "unpumped"],
20 scan bins. The reference is ``np.copyto(dst, frames)`` into a preallocated array, measured in
the same run on the same trains. A copy reads and writes every byte; the binner only reads the
frames (its per-bin sums are touched once per train), so about 2x the copy rate is the memory
limit. Sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it (see below). Usage::

    python benchmarks/binning.py [--trains N] [--repeats R] [--threads T] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# GNU OpenMP (numba's threading layer here) spins idle workers between parallel regions by
# default; on a shared 2-core machine the spinning steals the core the next train needs and the
# threaded kernel collapses. Passive waiting costs little; export OMP_WAIT_POLICY to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from beamstream.processors.base import TrainView  # noqa: E402
from beamstream.processors.binner import ScanBinner  # noqa: E402
from beamstream.streamer.train import Train  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

SHAPE = (100, 128, 512)
N_BINS = 20
SLOTS = ("pumped", "unpumped")


def make_trains(n: int, seed: int = 0) -> list[TrainView]:
    """``n`` distinct trains (more bytes than the caches hold), cycling through the bins."""
    rng = np.random.default_rng(seed)
    views = []
    for i in range(n):
        frames = rng.integers(0, 4096, SHAPE, dtype=np.uint16)
        frames.flags.writeable = False  # as received from the wire
        view = TrainView(Train(i), frames=frames, slots=SLOTS)
        view.frame_slot = np.arange(SHAPE[0], dtype=np.int64) % len(SLOTS)
        view.scan_key = float(i % N_BINS)
        views.append(view)
    return views


def best_rate(fn, views: list[TrainView], repeats: int) -> float:
    """The best of ``repeats`` passes over all trains, in frame bytes per second."""
    nbytes = sum(v.frames.nbytes for v in views)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for v in views:
            fn(v)
        best = min(best, time.perf_counter() - t0)
    return nbytes / best


def run(n_trains: int = 40, repeats: int = 5, threads: int | None = None) -> dict[str, float]:
    """Measure both rates (interleaved passes) and return the JSON record."""
    views = make_trains(n_trains)
    binner = ScanBinner(slots=SLOTS, threads=threads)
    state = binner.empty()
    dst = np.empty(SHAPE, np.uint16)

    def copy(v: TrainView) -> None:
        np.copyto(dst, v.frames)

    def binned(v: TrainView) -> None:
        binner.update(state, v)

    binned(views[0])  # compile (or load from the numba cache) and allocate the bins
    copy(views[0])
    copy_rate = bin_rate = 0.0
    for _ in range(repeats):  # alternate, so both see the same machine state
        copy_rate = max(copy_rate, best_rate(copy, views, 1))
        bin_rate = max(bin_rate, best_rate(binned, views, 1))
    return {
        "binner_GBps": bin_rate / 1e9,
        "copy_GBps": copy_rate / 1e9,
        "ratio_vs_copy": bin_rate / copy_rate,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trains", type=int, default=40, help="distinct trains per pass (13 MB each)")
    ap.add_argument("--repeats", type=int, default=5, help="passes; the best one counts")
    ap.add_argument("--threads", type=int, help="ScanBinner threads (default: all cores)")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    res = run(args.trains, args.repeats, args.threads)
    print(
        f"[OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores] "
        f"ScanBinner {res['binner_GBps']:.2f} GB/s, np.copyto {res['copy_GBps']:.2f} GB/s, "
        f"ratio {res['ratio_vs_copy']:.2f} (frames {SHAPE} uint16, {len(SLOTS)} slots, "
        f"{N_BINS} bins)"
    )
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
