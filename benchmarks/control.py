"""Live parameter changes: apply latency, throughput cost and lost trains.

A DSSC pump-probe pipeline (frame pattern, XGM threshold, scan binning, two ROIs) runs in this
process on the simulator (REP over tcp loopback), with its control API served over HTTP. A client
thread sends a change every second through the API, alternating a new monitor threshold (a new
segment) and a moved ROI (compatible).

* latency (``--rate`` trains/s, 10 by default): ``apply_latency_p99_s`` is the time from sending
  the request to the end of processing the first train of the new version (target <= 0.25 s);
  ``lost_trains`` = trains sent by the simulator - trains processed (target 0);
* throughput (saturated: the simulator as fast as the run takes): trains/s with a change every
  second against none, measured in alternating runs (ABBA), ``throughput_ratio`` is the median
  of the paired ratios (target >= 0.95).

Changes start after a 2 s warm-up (the first trains compile kernels and fill caches).

Usage: ``python benchmarks/control.py [--json PATH] [--duration S] [--pairs N]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, write_json  # noqa: E402

CONFIG = """
version = 1
[source]
endpoint = "{endpoint}"
socket = "REQ"
detector = "SCS_DET_DSSC1M-1/DET/0CH0:xtdf"
key = "image.data"
layout = ["frame", "ss", "fs"]
[scan]
source = "SCS_ILH_LAS/MDL/OPTICALDELAY_PP800"
key = "actualPosition"
stepsize = 0.5
[[processors]]
type = "frame_selector"
name = "frames"
pattern = ["pumped", "pumped_dark", "unpumped", "unpumped_dark"]
[[processors.rules]]
source = "SCS_BLU_XGM/XGM/DOOCS:output"
key = "data.intensityTD"
min = 100.0
[[processors]]
type = "roi"
name = "rois"
rois = [{{name = "signal", box = [200, 300, 40, 90]}}, {{name = "bg", box = [0, 100, 0, 40]}}]
[[processors]]
type = "scan_binner"
name = "binned"
dark_subtract = true
[run]
interval = 1.0
"""
FRAMES = 32
WARMUP_S = 2.0
TARGETS = {"apply_latency_p99_s": 0.25, "throughput_ratio": 0.95, "lost_trains": 0}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Session:
    """Simulator + runner + control API + a client changing a parameter every ``period`` s."""

    def __init__(self, rate: float, changes: bool, period: float = 1.0):
        from beamstream.config import parse_config
        from beamstream.control.api import ControlServer
        from beamstream.control.client import ControlClient
        from beamstream.control.controller import Controller
        from beamstream.runner import Runner
        from beamstream.simulate import DsscSimulator

        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.rate, self.changes, self.period = rate, changes, period
        self.sim = DsscSimulator(seed=1, frames=FRAMES, delays=(0.0, 1.0), xgm_jitter=0.3)
        config = parse_config(CONFIG.format(endpoint=self.endpoint))
        self.control = Controller(config, wait=5.0)
        self.runner = Runner(config, status_out=None, control=self.control)
        self.server = ControlServer(self.control, port=0)
        self.client = ControlClient("", client="bench")
        self.done_at: dict[int, float] = {}  # train id -> when its processing ended
        self.latencies: list[float] = []
        self.sent = 0
        self._stop = threading.Event()
        executor = self.runner.executor
        process = executor._process

        def timed(train: Any) -> None:
            process(train)
            self.done_at[train.train_id] = time.monotonic()

        executor._process = timed  # type: ignore[method-assign]

    def _serve(self) -> None:
        from beamstream.simulate import simulate

        result = simulate(self.sim, self.endpoint, "REP", rate=self.rate, stop_event=self._stop)
        self.sent = int(result.get("sent", 0))

    def _steer(self) -> None:
        k = 0
        self._stop.wait(WARMUP_S)  # the first trains compile and fill caches
        # no change in the last 1.5 s: one sent as the run ends would never reach a train
        while not self._stop.wait(self.period) and time.monotonic() < self._steer_until:
            k += 1
            if k % 2:
                values = {"processors.frames.rules[0].min": 100.0 + 50.0 * (k % 4)}
            else:
                values = {"processors.rois.rois[0].box": [200 + k % 7, 300, 40, 90]}
            t0 = time.monotonic()
            answer = self.client.set(values)
            first = answer.get("first_train_id")
            if not answer.get("applied") or first is None:
                self.latencies.append(float("inf"))
                continue
            deadline = time.monotonic() + 5
            while first not in self.done_at and time.monotonic() < deadline:
                time.sleep(0.001)
            self.latencies.append(self.done_at.get(first, float("inf")) - t0)

    def run(self, duration: float) -> dict[str, Any]:
        self._steer_until = time.monotonic() + duration - 1.5
        url = self.server.start()
        self.client.base = url
        serve = threading.Thread(target=self._serve, daemon=True)
        steer = threading.Thread(target=self._steer, daemon=True)
        serve.start()
        if self.changes:
            steer.start()
        status = self.runner.run(duration=duration)
        self._stop.set()
        serve.join(10)
        if self.changes:
            steer.join(10)
        self.server.stop()
        self.control.close()
        return {
            "processed": int(status["processed"]),
            "trains_per_s": status["processed"] / max(status["run_time_s"], 1e-9),
            "sent": self.sent,
            "ids": sorted(self.done_at),
            "versions": len(self.control.log),
            "latencies": self.latencies,
        }


def latency_run(rate: float, duration: float) -> dict[str, Any]:
    out = Session(rate, changes=True).run(duration)
    lat = np.asarray(out.pop("latencies"))
    out["changes"] = int(lat.size)
    # "higher": a change that never reached a train (inf) shows as inf, not as nan
    pct = {
        q: float(np.percentile(lat, q, method="higher")) if lat.size else float("nan")
        for q in (50, 99)
    }
    out["apply_latency_p50_s"], out["apply_latency_p99_s"] = pct[50], pct[99]
    out["not_applied_within_5s"] = int(np.isinf(lat).sum())
    out["apply_latencies_ms"] = [round(x * 1e3, 1) for x in lat.tolist()]
    # trains are numbered consecutively: a missing id between the first and the last processed
    # train is lost (a train still queued when the run stopped is not)
    ids = out.pop("ids")
    out["lost_trains"] = (ids[-1] - ids[0] + 1 - len(set(ids))) if ids else 0
    out["unprocessed_at_stop"] = max(out["sent"] - out["processed"], 0)
    return out


def throughput_pairs(duration: float, pairs: int) -> dict[str, Any]:
    Session(0, False).run(min(duration, 3.0))  # warm-up, discarded: the first run is slower
    ratios, rows = [], []
    for i in range(pairs):
        order = (False, True) if i % 2 == 0 else (True, False)  # ABBA
        got = {changes: Session(0, changes).run(duration) for changes in order}
        for g in got.values():
            g.pop("ids")
        ratio = got[True]["trains_per_s"] / got[False]["trains_per_s"]
        ratios.append(ratio)
        rows.append(
            {
                "none_trains_per_s": got[False]["trains_per_s"],
                "changing_trains_per_s": got[True]["trains_per_s"],
                "versions": got[True]["versions"],
                "ratio": ratio,
            }
        )
    return {"pairs": rows, "throughput_ratio": statistics.median(ratios)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=10.0, help="trains/s of the latency run")
    ap.add_argument("--latency-duration", type=float, default=30.0)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per throughput run")
    ap.add_argument("--pairs", type=int, default=3, help="pairs of throughput runs (AB, BA, ...)")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    lat = latency_run(args.rate, args.latency_duration)
    thr = throughput_pairs(args.duration, args.pairs)
    result = {
        "benchmark": "control",
        "frames_per_train": FRAMES,
        "latency_run": lat,
        "throughput": thr,
        "apply_latency_p99_s": lat["apply_latency_p99_s"],
        "throughput_ratio": thr["throughput_ratio"],
        "lost_trains": lat["lost_trains"],
        "targets": TARGETS,
        "environment": environment(),
    }
    print(
        f"latency at {args.rate:g} trains/s: {lat['changes']} changes, "
        f"p50 {lat['apply_latency_p50_s'] * 1e3:.1f} ms, "
        f"p99 {lat['apply_latency_p99_s'] * 1e3:.1f} ms (target <= 250 ms), "
        f"max {max(lat['apply_latencies_ms'], default=float('nan')):.1f} ms, "
        f"not applied within 5 s {lat['not_applied_within_5s']}; "
        f"sent {lat['sent']}, processed {lat['processed']}, lost {lat['lost_trains']}"
    )
    for row in thr["pairs"]:
        print(
            f"saturated: no changes {row['none_trains_per_s']:.1f} trains/s, "
            f"a change every second {row['changing_trains_per_s']:.1f} trains/s "
            f"({row['versions']} versions): ratio {row['ratio']:.3f}"
        )
    print(f"throughput_ratio (median of pairs) {thr['throughput_ratio']:.3f} (target >= 0.95)")
    if args.json:
        write_json(args.json, result)
    ok = (
        lat["apply_latency_p99_s"] <= TARGETS["apply_latency_p99_s"]
        and thr["throughput_ratio"] >= TARGETS["throughput_ratio"]
        and lat["lost_trains"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
