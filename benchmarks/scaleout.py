"""Benchmark: live q-phi throughput with 1 and 2 Dask workers (``beamstream run --workers``).

A LocalCluster of 2 single-threaded worker processes runs a q-phi pipeline (1 Mpix frames,
500 q x 360 phi + 1000 q, ``nthreads = 1``) fed by a cheap source in this process: one frame,
encoded once per train with a new train id (the array goes out zero-copy) on a raw PUSH socket.
Runs with 1 and 2 workers alternate (the machine is shared and noisy); each measures the trains
the workers took over ``--seconds`` after a warm-up; the medians are reported.

Usage: ``python benchmarks/scaleout.py [--json PATH] [--rounds 3] [--seconds 6]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, write_json  # noqa: E402

from beamstream.cluster.dask_backend import DaskBackend  # noqa: E402
from beamstream.cluster.live import DaskLiveExecutor  # noqa: E402
from beamstream.config import parse_config  # noqa: E402
from beamstream.runner import Runner  # noqa: E402
from beamstream.streamer.protocol import encode_train  # noqa: E402
from beamstream.streamer.train import Train  # noqa: E402

DET = "SA1_SIM_SAXS/DET/EIGER1M:daqOutput"
CONFIG = f"""
version = 1
[source]
endpoint = "{{endpoint}}"
socket = "PULL"
detector = "{DET}"
key = "data.image.pixels"
layout = ["frame", "y", "x"]
frame_shape = [1024, 1024]
queue = 4

[[processors]]
type = "qphi"
name = "qphi"
npt_q = 500
npt_q_1d = 1000
npt_phi = 360
q_range = [0.3, 6.0]
unit = "q_nm^-1"
polarization_factor = 0.99
nthreads = 1

[processors.geometry]
dist = 0.6
poni1 = 0.03981
poni2 = 0.03759
rot1 = 0.004
rot2 = -0.003
rot3 = 0.0
pixel1 = 7.5e-5
pixel2 = 7.5e-5
wavelength = 1.0332016536100021e-10
shape = [1024, 1024]

[run]
interval = 1.0
records = 100
"""


class Source:
    """Send one frame as trains with increasing ids from a PUSH socket, as fast as taken."""

    def __init__(self, endpoint: str):
        rng = np.random.default_rng(0)
        self.frame = rng.poisson(50.0, (1, 1024, 1024)).astype(np.uint16)
        self.sock = zmq.Context.instance().socket(zmq.PUSH)
        self.sock.set_hwm(2)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        tid = 1
        while not self.stop.is_set():
            train = Train(tid, time.time(), {DET: {"data.image.pixels": self.frame}}, {DET: {}})
            frames = encode_train(train)
            while not self.sock.poll(100, zmq.POLLOUT):
                if self.stop.is_set():
                    return
            self.sock.send_multipart(frames, copy=False)
            self.sent += 1
            tid += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close(linger=0)


def measure(backend: DaskBackend, workers: int, seconds: float, endpoint: str) -> float:
    """Trains per second taken by ``workers`` workers over ``seconds`` after a warm-up."""
    config = parse_config(CONFIG.format(endpoint=endpoint))
    source = Source(endpoint)
    executor = DaskLiveExecutor(backend, workers=workers)
    driver = Runner(config, executor, status_out=None)
    runner = threading.Thread(target=driver.run, daemon=True)
    runner.start()
    try:
        while len(executor.slots) < workers or driver.counters.processed < 4 * workers:
            if not runner.is_alive():
                raise RuntimeError("the run ended before the warm-up")
            time.sleep(0.1)

        def taken() -> tuple[float, int]:
            peeks = executor._peek(executor._alive())
            return time.perf_counter(), sum(p["taken"] for p in peeks.values() if p)

        t0, n0 = taken()
        time.sleep(seconds)
        t1, n1 = taken()
        return (n1 - n0) / (t1 - t0)
    finally:
        driver.stop()
        runner.join(60)
        source.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run")
    args = ap.parse_args(argv)
    rates: dict[int, list[float]] = {1: [], 2: []}
    with DaskBackend.connect(workers=2) as backend:
        for r in range(args.rounds):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            for n in order:
                endpoint = f"ipc:///tmp/beamstream-scaleout-{r}-{n}.sock"
                rate = measure(backend, n, args.seconds, endpoint)
                rates[n].append(rate)
                print(f"round {r + 1}: {n} worker(s): {rate:6.1f} trains/s", flush=True)
    t1, t2 = statistics.median(rates[1]), statistics.median(rates[2])
    result = {"trains_per_s_1": t1, "trains_per_s_2": t2, "speedup": t2 / t1}
    print(f"median: 1 worker {t1:.1f} trains/s, 2 workers {t2:.1f} trains/s: {t2 / t1:.2f}x")
    if args.json:
        write_json(args.json, result)
        write_json(
            Path(args.json).with_suffix(".env.json"),
            {"rounds": rates, "seconds": args.seconds, "environment": environment()},
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
