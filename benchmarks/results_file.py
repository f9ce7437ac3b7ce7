"""Benchmark: writing a results file (full NeXus layout) against a plain h5py dump of its arrays.

The pipeline's own results and states of two examples, made by running the pipelines on
simulated trains in this process: ``config/saxs_qphi.toml`` (I(q) with errors, the 500 x 360
cake, NXcanSAS file) and ``config/dssc_pump_probe.toml`` (four slots of 128 x 512 means per
delay, pump-probe images). ``write_results_file`` writes everything a results file holds
(results as NXdata with errors, titles, long names; ``/entry/plot``; instrument, beam and
sample groups; states; provenance; the NXcanSAS file), atomically. The reference, timed in the
same run on the same arrays, writes every result and state array once into a new file with
h5py, nothing else. Their ratio is the price of the layout over the bytes that must be written
anyway. Usage::

    python benchmarks/results_file.py [--repeats R] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from beamstream.config import load_config
from beamstream.formats.results_writer import write_results_file
from beamstream.processors.pipeline import Pipeline
from beamstream.simulate import DsscSimulator, SaxsSimulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "saxs_qphi": (lambda: SaxsSimulator(seed=1, frames=2), 2),
    "dssc_pump_probe": (lambda: DsscSimulator(seed=1, frames=16, trains_per_step=1), 10),
}


def accumulate(name: str) -> tuple[str, dict, dict]:
    """Config text, states and results of ``config/<name>.toml`` after a few simulated trains."""
    config = load_config(ROOT / "config" / f"{name}.toml")
    make, n = CASES[name]
    pipe = Pipeline(config)
    states = pipe.empty_states()
    for train in make().trains(n):
        pipe.process(train, states)
    return config.text, states, pipe.finalize(states)


def arrays_of(states: dict, results: dict) -> list[np.ndarray]:
    out = [np.asarray(r.data) for named in results.values() for r in named.values()]
    for s in states.values():
        tree = s.to_dict() if hasattr(s, "to_dict") else {"a": s}
        stack = [tree]
        while stack:
            for v in stack.pop().values():
                if isinstance(v, dict):
                    stack.append(v)
                elif isinstance(v, np.ndarray) and v.dtype != object:
                    out.append(v)
    return out


def time_full(path: Path, text: str, states: dict, results: dict) -> float:
    t0 = time.perf_counter()
    write_results_file(
        path,
        config_text=text,
        config_path="bench.toml",
        results=results,
        states=states,
        segments=[],
        snapshot={"seq": 1, "time": time.time(), "epoch": 0, "final": True},
        fsync=False,
    )
    return time.perf_counter() - t0


def time_plain(path: Path, arrays: list[np.ndarray]) -> float:
    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        for i, a in enumerate(arrays):
            f.create_dataset(str(i), data=a)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    report: dict = {"environment": environment(), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            text, states, results = accumulate(name)
            arrays = arrays_of(states, results)
            mb = sum(a.nbytes for a in arrays) / 1e6
            full, plain = [], []
            for k in range(args.repeats):  # alternate, so that load changes hit both alike
                full.append(time_full(Path(tmp) / f"full{k}.h5", text, states, results))
                plain.append(time_plain(Path(tmp) / f"plain{k}.h5", arrays))
            ratio = float(np.median(np.array(full) / np.array(plain)))
            report["cases"][name] = {
                "MB": mb,
                "full_ms_median": 1e3 * float(np.median(full)),
                "plain_ms_median": 1e3 * float(np.median(plain)),
                "ratio_full_over_plain": ratio,
            }
            print(
                f"{name:16s} {mb:7.1f} MB  results file {1e3 * np.median(full):7.1f} ms  "
                f"plain h5py {1e3 * np.median(plain):7.1f} ms  ratio {ratio:.2f} (median of "
                f"{args.repeats} paired runs)"
            )
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
