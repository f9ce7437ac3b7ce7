"""Warm start: seconds from ``beamstream run`` to the first processed train, cold vs warm cache.

For each example pipeline, a simulator serves trains (REP, 10 trains/s) and ``beamstream run
CONFIG --trains 3`` is started as a new process: once with an empty numba cache directory (cold:
every kernel compiles), then ``--repeats`` times with that cache filled (warm). The time is the
run's own "first train processed N s after start" (from the process start, read from /proc).
The ratio warm/cold is the reference measured side by side; the goal is <= 3 s warm.

Usage: ``python benchmarks/warmstart.py [--json PATH] [--repeats R] [--pipelines saxs,dssc]``
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = {
    "saxs": ("saxs_qphi.toml", ["--detector", "saxs"]),
    "dssc": ("dssc_pump_probe.toml", ["--detector", "dssc", "--frames", "40"]),
    "rixs": ("rixs_centroid.toml", ["--detector", "rixs", "--photons", "1000"]),
}
GOAL_S = 3.0
_FIRST = re.compile(r"first train processed ([0-9.]+) s after start")


def first_train_s(config: str, sim_args: list[str], cache: str, sockdir: str) -> float:
    """One ``beamstream run``: seconds from its start to its first processed train."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    endpoint = f"ipc://{sockdir}/src"
    sim = subprocess.Popen(
        [sys.executable, "-m", "beamstream", "simulate", *sim_args, "--endpoint", endpoint,
         "--socket", "REP", "--rate", "10", "--quiet"],
        env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # the simulator binds
        run = subprocess.run(
            [sys.executable, "-m", "beamstream", "run", str(ROOT / "config" / config),
             "--endpoint", endpoint, "--trains", "3", "--no-dashboard", "-q"],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    finally:
        sim.terminate()
        sim.wait(10)
    found = _FIRST.search(run.stdout)
    if run.returncode != 0 or not found:
        raise RuntimeError(f"run failed: {run.stdout}\n{run.stderr}")
    return float(found.group(1))


def measure(name: str, repeats: int) -> dict[str, Any]:
    config, sim_args = PIPELINES[name]
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as sockdir:
        cold = first_train_s(config, sim_args, cache, sockdir)
        warm = [first_train_s(config, sim_args, cache, sockdir) for _ in range(repeats)]
    med = statistics.median(warm)
    print(
        f"{name:<5} cold {cold:6.2f} s | warm {', '.join(f'{w:.2f}' for w in warm)} s "
        f"(median {med:.2f}) | warm/cold {med / cold:.2f} | goal <= {GOAL_S:g} s: "
        f"{'met' if med <= GOAL_S else 'NOT met'}"
    )
    return {"cold_s": cold, "warm_s": warm, "warm_median_s": med, "warm_vs_cold": med / cold}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--pipelines", default="saxs,dssc,rixs")
    args = p.parse_args(argv)
    results = {n: measure(n, args.repeats) for n in args.pipelines.split(",")}
    if args.json:
        write_json(args.json, {"env": environment(), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
