"""Benchmark: the live dashboard's latency to a browser and its cost to processing.

Pipeline (in process, no sockets): one DSSC-like module, ``--frames`` frames of 128 x 512 uint16
per train, pattern ["pumped", "unpumped"], 10 scan bins, `ScanBinner`; snapshots every 0.5 s.
The dashboard (`DashboardSink`, 4 Hz by default) is opened in headless Chromium (selenium with
Debian's chromium/chromium-driver).

* Latency: trains arrive paced at ``--rate`` (10/s); the first ``--settle`` s (3), while the
  fresh page builds its panels, are not measured. A train counts as received when the runner
  takes it (its ``received_at``); it is "in the browser's document" once the browser's copy of
  the ``records`` source (every train's record, streamed) holds its train id, as seen by a
  listener installed in the page. p50/p99 over all trains of the measurement (target p99 <= 0.5 s).
* Throughput: trains as fast as the pipeline takes them for ``--duration`` s, with the dashboard
  open in the browser vs without a dashboard (the reference, measured in the same run,
  in ``--repeats`` pairs of runs (each pair's order alternating, ABBA), the ratio being the
  median of the pairs' ratios, so that slow drifts of a shared machine cancel); target >= 0.95.

Usage::

    python benchmarks/dashboard.py [--duration S] [--repeats R] [--frames N] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.config import parse_config
from beamstream.executors import LocalExecutor  # noqa: E402
from beamstream.runner import Runner
from beamstream.sinks.dashboard import DashboardSink
from beamstream.streamer.train import Train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

DET = "DET/0:xtdf"
THREADS = os.cpu_count() or 1
CONFIG = """
version = 1
[source]
detector = "DET/0:xtdf"
key = "image.data"
layout = ["frame", "ss", "fs"]
[scan]
source = "DELAY"
key = "value"
[[processors]]
type = "frame_selector"
pattern = ["pumped", "unpumped"]
[[processors]]
type = "scan_binner"
name = "binner"
threads = THREADS
[run]
interval = 0.5
status_interval = 1000
"""

#: installed in the page: notes (train id, wall time) whenever the records reach the document
LISTEN = """
const doc = Bokeh.documents[0];
const rec = doc.get_model_by_name('records');
window.__seen = [];
const note = () => {
  const t = rec.data.train_id;
  if (t && t.length) window.__seen.push([t[t.length - 1], Date.now() / 1000]);
};
rec.streaming.connect(note);
rec.change.connect(note);
return true;
"""


def make_frames(n: int, frames: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = rng.integers(0, 4096, (frames, 128, 512), dtype=np.uint16)
        a.flags.writeable = False
        out.append(a)
    return out


def trains(
    frames: list[np.ndarray], rate: float | None, receipts: dict[int, float], first_id: int = 10_000
) -> Iterator[Train]:
    """Trains with fresh ids; paced at ``rate`` (None: as fast as taken); receipt wall times."""
    t0 = time.monotonic()
    for k in itertools.count():
        if rate:
            due = t0 + k / rate
            while (now := time.monotonic()) < due:
                time.sleep(min(due - now, 0.005))
        tid = first_id + k
        train = Train(
            tid,
            time.time(),
            {DET: {"image.data": frames[k % len(frames)]}, "DELAY": {"value": float(k % 10)}},
        )
        train.received_at = time.monotonic()
        receipts[tid] = time.time()
        yield train


_TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(path: str) -> float:
    """utime + stime (s) from a /proc ``stat`` file; 0 when it is gone."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def browser_cpu(driver: Any) -> float:
    """CPU seconds used so far by chromedriver and every process under it (the browser)."""
    root = driver.service.process.pid
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    return sum(_stat_cpu(f"/proc/{pid}/stat") for pid in tree)


def thread_cpu(thread: Any) -> float:
    """CPU seconds used so far by one thread of this process (0 when there is none)."""
    tid = getattr(thread, "native_id", None)
    return _stat_cpu(f"/proc/self/task/{tid}/stat") if tid else 0.0


def open_browser(profile: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1400",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    driver.set_script_timeout(10)
    return driver


def wait_page(driver: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    probe = (
        "const d = window.Bokeh && Bokeh.documents[0]; "
        "return !!(d && d.get_model_by_name('records'));"
    )
    while not driver.execute_script(probe):
        if time.monotonic() > deadline:
            raise RuntimeError("the dashboard page did not load")
        time.sleep(0.1)


def run_once(
    frames: list[np.ndarray],
    duration: float,
    rate: float | None,
    driver: Any | None,
    update_hz: float,
    settle: float = 0.0,
    cpu: dict[str, list[float]] | None = None,
) -> tuple[float, list[float]]:
    """One run of ``duration`` s after ``settle`` s: (trains/s, latencies to the browser).

    ``cpu``, when given and a browser is open, gets the measured window's CPU share (cores) of
    the browser and of the dashboard server thread appended under "browser" and "server", and
    the page updates sent per second under "updates".

    Both count only after the first ``settle`` s, in which the page builds its panels for the
    first results (a one-off cost per page, not a cost of keeping it open); runs without a
    browser are measured the same way.
    """
    receipts: dict[int, float] = {}
    sinks = []
    if driver is not None:
        sink = DashboardSink(port=0, update_hz=update_hz, out=None)
        sinks.append(sink)
    config = CONFIG.replace("THREADS", str(THREADS))
    executor = LocalExecutor()
    runner = Runner(parse_config(config, "bench.toml"), executor, sinks, status_out=None)
    if driver is not None:  # the server must be up to load the page: start it ahead
        sink.open(runner.hub)  # the runner's own open() then keeps this server
        driver.get(sink.url)
        wait_page(driver)
    state: dict[str, Any] = {}

    def cpu_now() -> tuple[float, float, float]:
        """(browser CPU s, server thread CPU s, updates sent to the page so far)."""
        if driver is None:
            return 0.0, 0.0, 0.0
        sent = float(sum(app.sent for app in sink.apps))
        return browser_cpu(driver), thread_cpu(sink.server._thread), sent

    if driver is not None:  # read the server thread's CPU before the run's end stops it
        stop_server = sink.close

        def close() -> None:
            state["cpu1"], state["t1"] = cpu_now(), time.monotonic()
            stop_server()

        sink.close = close  # type: ignore[method-assign]

    def feed() -> Iterator[Train]:
        for i, t in enumerate(trains(frames, rate, receipts)):
            now = time.monotonic()
            if i == 0:
                if driver is not None:
                    driver.execute_script(LISTEN)
                state["t0"] = now
            elif "t_settled" not in state and now - state["t0"] >= settle:
                # steady state: the page has built its panels for the first results
                state["t_settled"], state["n_settled"] = now, runner.status_dict()["processed"]
                state["cpu0"] = cpu_now()
            yield t

    executor.source = feed()
    status = runner.run(duration=duration + settle)
    elapsed = time.monotonic() - state.get("t_settled", state["t0"])
    throughput = (status["processed"] - state.get("n_settled", 0)) / elapsed
    if cpu is not None and "cpu0" in state and "cpu1" in state:
        window = state["t1"] - state["t_settled"]
        for name, a, b in zip(
            ("browser", "server", "updates"), state["cpu0"], state["cpu1"], strict=True
        ):
            cpu.setdefault(name, []).append((b - a) / window)
    latencies: list[float] = []
    if driver is not None:
        seen = sorted(driver.execute_script("return window.__seen || [];"), key=lambda p: p[1])
        ids = np.array([s[0] for s in seen])
        at = np.array([s[1] for s in seen])
        best = np.maximum.accumulate(ids) if len(ids) else ids
        start = min(receipts.values(), default=0.0) + settle
        for tid, t_rx in receipts.items():
            if t_rx < start:
                continue
            i = int(np.searchsorted(best, tid)) if len(best) else 0
            if i < len(best):
                latencies.append(float(at[i] - t_rx))
    return throughput, latencies


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per throughput run")
    ap.add_argument("--latency-duration", type=float, default=20.0, help="seconds at --rate")
    ap.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds of the latency run before measuring (the page builds its panels)",
    )
    ap.add_argument("--rate", type=float, default=10.0, help="trains/s of the latency run")
    ap.add_argument("--repeats", type=int, default=7, help="pairs of throughput runs")
    ap.add_argument("--frames", type=int, default=100, help="frames per train")
    ap.add_argument("--update-hz", type=float, default=4.0, help="dashboard refresh rate")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="ScanBinner threads (0: all cores but one, which the browser on this machine needs; "
        "at a beamline the browser runs elsewhere)",
    )
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    global THREADS
    THREADS = args.threads if args.threads > 0 else max(1, (os.cpu_count() or 2) - 1)

    frames = make_frames(8, args.frames)
    with tempfile.TemporaryDirectory(prefix="bs-bench-") as profile:
        driver = open_browser(profile)
        try:
            run_once(frames, 2.0, None, driver, args.update_hz)  # warm up: numba, Bokeh, browser
            run_once(frames, 2.0, None, None, args.update_hz)
            _, lat = run_once(
                frames,
                args.latency_duration,
                args.rate,
                driver,
                args.update_hz,
                args.settle,
            )
            without, with_ = [], []
            cpu: dict[str, list[float]] = {}
            for i in range(args.repeats):
                # pairs, in alternating order (ABBA): slow drifts of a shared machine cancel
                pair = ((None, without), (driver, with_))
                for drv, out in pair if i % 2 == 0 else pair[::-1]:
                    out.append(
                        run_once(
                            frames, args.duration, None, drv, args.update_hz, args.settle, cpu
                        )[0]
                    )
        finally:
            driver.quit()
    lat_a = np.asarray(lat)
    res = {
        "latency_p50_s": float(np.percentile(lat_a, 50)) if lat_a.size else None,
        "latency_p99_s": float(np.percentile(lat_a, 99)) if lat_a.size else None,
        "throughput_ratio": statistics.median(w / wo for w, wo in zip(with_, without, strict=True)),
        "processing_threads": THREADS,
        "browser_cpu_cores": statistics.median(cpu.get("browser", [0.0])),
        "server_cpu_cores": statistics.median(cpu.get("server", [0.0])),
        "saturated_updates_per_s": statistics.median(cpu.get("updates", [0.0])),
    }
    print(
        f"latency to the browser at {args.rate:g} trains/s ({lat_a.size} trains, dashboard "
        f"{args.update_hz:g} Hz): p50 {res['latency_p50_s']:.3f} s, "
        f"p99 {res['latency_p99_s']:.3f} s (target p99 <= 0.5 s)"
    )
    print(
        f"throughput: {statistics.median(without):.1f} trains/s without dashboard, "
        f"{statistics.median(with_):.1f} with it open in a browser "
        f"({args.frames} frames of 128x512 per train, {THREADS} processing thread(s), "
        f"{os.cpu_count()} cores)"
    )
    print(
        "  each run, trains/s: without "
        + " ".join(f"{x:.0f}" for x in without)
        + "; with "
        + " ".join(f"{x:.0f}" for x in with_)
    )
    print(
        f"  while the page was open: browser {100 * res['browser_cpu_cores']:.1f} % of a core, "
        f"dashboard server thread {100 * res['server_cpu_cores']:.1f} %, "
        f"{res['saturated_updates_per_s']:.2f} page updates/s"
    )
    print(f"ratio {res['throughput_ratio']:.3f}, median of the pairs (target >= 0.95)")
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
