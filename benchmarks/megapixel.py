"""Benchmark: AGIPD 1M at 64 pulses per train through the whole pipeline, and train matching.

1. Pipeline (one process, pre-decoded trains from memory: 16 modules x 64 frames x 512 x 128
   float32, 268 MB per train, stacked as the bridge's ``--append-detector-modules`` sends them):
   frame pattern + XGM rule, scan-binned sums, per-pulse 1-D I(q) over the unassembled modules
   (512 bins, extra-geom pixel positions) and one assembled display image per second (extra-geom
   ``position_modules`` of the current binned mean). Real time is 10 trains/s; ``realtime_ratio``
   is ``trains_per_s / 10``.
2. Matching: the same trains from 16 module sources on 16 loopback endpoints, matched into trains
   by `MatchedSource`, against the same bytes as one stacked source on one endpoint
   (``matching_ratio``: matched trains/s over stacked trains/s, measured in the same run; the
   senders run in a child process).

Sets ``OMP_WAIT_POLICY=PASSIVE`` unless set (see benchmarks/binning.py). Usage::

    python benchmarks/megapixel.py [--trains N] [--frames F] [--match-trains M] [--json PATH]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from beamstream.config import parse_config, source_geometry  # noqa: E402
from beamstream.geometry import Assembler  # noqa: E402
from beamstream.processors.pipeline import Pipeline  # noqa: E402
from beamstream.streamer.train import Train  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

DET = "SPB_DET_AGIPD1M-1/DET/APPEND"
MODULE = "SPB_DET_AGIPD1M-1/DET/{module}CH0:xtdf"
XGM = "SA1_XTD2_XGM/XGM/DOOCS:output"
DELAY = "SA1_LAS/MDL/DELAY"
NMOD, NY, NX = 16, 512, 128

CONFIG = f"""
version = 1
[source]
detector = "{DET}"
layout = ["frame", "module", "ss", "fs"]
geometry = {{ detector = "AGIPD_1M" }}
[scan]
source = "{DELAY}"
key = "actualPosition"
stepsize = 0.1
[[processors]]
type = "frame_selector"
name = "frames"
pattern = ["pumped", "unpumped"]
[[processors.rules]]
source = "{XGM}"
key = "data.intensityTD"
min = 100.0
[[processors]]
type = "scan_binner"
name = "binned"
[[processors]]
type = "qphi"
name = "qphi"
geometry = {{ extra_geom = "source", dist = 0.5, energy = 9.3 }}
npt_q = 512
outputs = ["iq"]
per_frame = "iq"
"""


def make_trains(n: int, frames: int, seed: int = 0) -> list[Train]:
    """``n`` distinct stacked trains (float32, Poisson-like counts), XGM and a delay."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 20.0, (NMOD, NY, NX)).astype(np.float32)
    trains = []
    for i in range(n):
        data = base[None] + rng.standard_normal((frames, 1, 1, NX), dtype=np.float32)
        data.flags.writeable = False
        xgm = np.full(1000, 1.0, np.float32)  # 1.0: no pulse (as European XFEL's XGM sends)
        xgm[:frames] = rng.uniform(50, 2000, frames)  # one pulse per frame, ~3% below the rule
        trains.append(
            Train(
                1000 + i,
                None,
                {
                    DET: {"image.data": data},
                    XGM: {"data.intensityTD": xgm},
                    DELAY: {"actualPosition": 0.1 * (i % 5)},
                },
            )
        )
    return trains


def bench_pipeline(n: int, frames: int, rounds: int) -> dict[str, float]:
    config = parse_config(CONFIG)
    pipe = Pipeline(config)
    asm = Assembler(source_geometry(config))
    states = pipe.empty_states()
    trains = make_trains(n, frames)
    view = pipe.process(trains[0], states)  # compile / load kernels, build tables
    accepted = int(view.records["accepted_frames"])
    binned = pipe.accumulators[0]
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        next_display = t0
        displays = 0
        for train in trains:
            train.train_id += 10_000  # a fresh train id per round
            pipe.process(train, states)
            now = time.perf_counter()
            if now >= next_display:  # once per second: the current mean, assembled
                st = states[binned.name]
                row = st.index(train.get(DELAY, "actualPosition") // 0.1 * 0.1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = st["sum"][row, 0] / st["pixel_count"][row, 0]
                asm.assemble(mean.astype(np.float32))
                displays += 1
                next_display = now + 1.0
        best = max(best, len(trains) / (time.perf_counter() - t0))
    return {
        "trains_per_s": best,
        "realtime_ratio": best / 10.0,
        "module_frames_per_s": best * frames * NMOD,
        "MB_per_s": best * NMOD * frames * NY * NX * 4 / 1e6,
        "accepted_frames_per_train": accepted,
    }


# -- matching ----------------------------------------------------------------------------------
def _serve(endpoints: list[str], stacked: bool, n: int, frames: int, go, done) -> None:  # noqa: ANN001
    """Send ``n`` trains: one stacked array from one endpoint, or one module per endpoint.

    The process stays until ``done``: zero-copy messages still queued in ZeroMQ would otherwise
    be read from freed memory at exit.
    """
    from beamstream.streamer.sender import Sender

    rng = np.random.default_rng(1)
    module = rng.random((frames, NY, NX), dtype=np.float32)
    # the arrays outlive the sends (they go out zero-copy)
    whole = np.ascontiguousarray(np.broadcast_to(module[:, None], (frames, NMOD, NY, NX)))
    senders = [Sender(ep, socket="PUSH") for ep in endpoints]
    go.wait()
    for k in range(n):
        tid = 1000 + k
        if stacked:
            senders[0].send(Train(tid, None, {DET: {"image.data": whole}}), timeout=60)
            continue
        for m, s in enumerate(senders):
            train = Train(tid, None, {MODULE.format(module=m): {"image.data": module}})
            s.send(train, timeout=60)
    done.wait(120)
    for s in senders:
        s.close()


def _receive(source, n: int) -> float:  # noqa: ANN001
    t0 = None
    for _ in range(n):
        train = source.get(timeout=60)
        if train is None:
            raise RuntimeError("trains stopped arriving")
        if t0 is None:
            t0 = time.perf_counter()
    return (n - 1) / (time.perf_counter() - t0)


def bench_matching(n: int, frames: int) -> dict[str, float]:
    from beamstream.streamer.multi import InputSpec, MatchedSource
    from beamstream.streamer.receiver import Receiver

    rates = {}
    ctx = mp.get_context("spawn")
    for stacked in (True, False):
        eps = [f"tcp://127.0.0.1:{_free_port()}" for _ in range(1 if stacked else NMOD)]
        go, done = ctx.Event(), ctx.Event()
        proc = ctx.Process(target=_serve, args=(eps, stacked, n, frames, go, done), daemon=True)
        proc.start()
        if stacked:
            src = Receiver(eps[0], "PULL", queue=4)
        else:
            src = MatchedSource(
                [InputSpec(e, "PULL", f"m{i}") for i, e in enumerate(eps)],
                deadline_ms=2000,
                max_pending=8,
                queue=4,
            )
        try:
            time.sleep(0.5)
            go.set()
            rates["stacked" if stacked else "matched"] = _receive(src, n)
        finally:
            done.set()
            src.close()
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return {
        "matched_trains_per_s": rates["matched"],
        "stacked_trains_per_s": rates["stacked"],
        "matching_ratio": rates["matched"] / rates["stacked"],
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trains", type=int, default=6, help="distinct trains (268 MB each)")
    ap.add_argument("--frames", type=int, default=64, help="frames per train")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the trains; best counts")
    ap.add_argument("--match-trains", type=int, default=30, help="trains for the matching test")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    res = bench_pipeline(args.trains, args.frames, args.rounds)
    print(
        f"[load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores] AGIPD 1M x {args.frames} "
        f"frames: {res['trains_per_s']:.2f} trains/s (realtime ratio {res['realtime_ratio']:.2f}), "
        f"{res['module_frames_per_s']:.0f} module frames/s, {res['MB_per_s']:.0f} MB/s "
        f"({res['accepted_frames_per_train']} of {args.frames} frames pass the XGM rule)"
    )
    res.update(bench_matching(args.match_trains, args.frames))
    print(
        f"matching: 16 sources {res['matched_trains_per_s']:.2f} trains/s, one stacked source "
        f"{res['stacked_trains_per_s']:.2f} trains/s, ratio {res['matching_ratio']:.2f}"
    )
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
