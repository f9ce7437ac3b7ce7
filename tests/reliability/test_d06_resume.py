"""Defect 6 and the crash suite: kill -9 during snapshot writes, then resume: bit-exact results,
no duplicate per-train records, no leftover temporaries.

A kill can land after the records of the next snapshot were appended but before the results
file was replaced; those rows belong to trains the stored states do not hold (the resumed run
receives them again), so readers cut each records file to the rows the results file holds.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from beamstream.config import parse_config
from beamstream.executors import LocalExecutor
from beamstream.formats.results import load_resume, read_records, read_results_file
from beamstream.runner import Runner
from beamstream.sinks.hdf5 import HDF5Sink
from tests.replay.synth import CONFIG, make_trains
from tests.sinks.test_hdf5 import (
    _send,
    assert_same_results,
    assert_same_states,
    reference,
    run_to,
)


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _append_rows(path: Path, train_ids: list[int]) -> None:
    """Append complete rows (every column and index) as a killed writer would have."""
    with h5py.File(path, "a", libver="latest") as f:
        for group in ("records", "records_index"):
            for ds in f.get(group, {}).values():
                n = ds.shape[0]
                k = len(train_ids)
                ds.resize(n + k, axis=0)
                ds[n:] = ds[n - k : n] if group == "records_index" else ds[:k]
        ds = f["records/train_id"]
        ds[-len(train_ids) :] = np.asarray(train_ids, np.uint64)


def _resume(out: Path, trains) -> None:  # noqa: ANN001
    cfg = parse_config(CONFIG, "t.toml")
    previous = load_resume(out, cfg)
    sink = HDF5Sink(str(out), fsync=False)
    sink.resume_from(
        previous.segments, previous.records_files_for(out), previous.source.records_rows()
    )
    executor = LocalExecutor(iter(trains))
    Runner(cfg, executor, [sink], states=previous.states, status_out=None).run()


def test_rows_after_the_last_results_write_are_not_read(tmp_path: Path) -> None:
    n = 60
    trains = list(make_trains(n))
    out = tmp_path / "out.h5"
    run_to(out, trains[:40])
    # the crash window: the next snapshot's records are in, the results file is not replaced
    _append_rows(tmp_path / "out.records.h5", [t.train_id for t in trains[40:50]])
    leftover = tmp_path / f"out.h5.tmp-{_dead_pid()}"
    leftover.write_bytes(b"\0" * 1000)
    done = read_results_file(out).last_train_id
    _resume(out, [t for t in trains if t.train_id > done])
    rf = read_results_file(out)
    ids = read_records(rf.records_paths(), rows=rf.records_rows())["train_id"]
    assert ids.tolist() == [t.train_id for t in trains]  # every train once, in order
    states, expected = reference(trains)
    assert_same_results(rf.results, expected)
    assert_same_states(load_resume(out, parse_config(CONFIG)).states, states)
    assert not leftover.exists()


@pytest.mark.timeout(120)
def test_kill_9_during_snapshot_writes_then_resume(
    tmp_path: Path, endpoint: str, processes, subprocess_env
) -> None:
    """Real kills at random moments while snapshots are written every 20 ms."""
    n = 150
    trains = list(make_trains(n))
    reference(trains[:2])  # compile the kernels first
    cfg = tmp_path / "p.toml"
    cfg.write_text(
        CONFIG.replace("tcp://127.0.0.1:4545", endpoint).replace(
            "interval = 0.1", "interval = 0.02"
        )
    )
    out = tmp_path / "out.h5"
    rng = random.Random(7)
    for trial in range(2):
        done = read_results_file(out).last_train_id if out.exists() else None
        rest = [t for t in trains if done is None or t.train_id > done]
        stop = threading.Event()
        feeder = threading.Thread(target=_send, args=(endpoint, rest, stop, 0.005))
        feeder.start()
        argv = [sys.executable, "-m", "beamstream", "run", str(cfg), "-q", "--no-dashboard"]
        argv += ["--resume", str(out)] if out.exists() else ["-o", str(out)]
        try:
            proc = processes.start(argv, env=subprocess_env)
            deadline = time.monotonic() + 30
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 0.3))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            stop.set()
            feeder.join(10)
        assert out.exists(), f"trial {trial}: no snapshot written"
    done = read_results_file(out).last_train_id
    rest = [t for t in trains if t.train_id > done]
    stop = threading.Event()
    feeder = threading.Thread(target=_send, args=(endpoint, rest, stop, 0.0))
    feeder.start()
    try:
        argv = [sys.executable, "-m", "beamstream", "run", str(cfg), "-q", "--no-dashboard"]
        argv += ["--resume", str(out), "--trains", str(len(rest))]
        proc = processes.start(argv, env=subprocess_env)
        assert proc.wait(60) == 0, processes.stop(proc)
    finally:
        stop.set()
        feeder.join(10)
    rf = read_results_file(out)
    states, expected = reference(trains)
    assert rf.snapshot["final"]
    assert_same_results(rf.results, expected)
    assert_same_states(load_resume(out, parse_config(CONFIG)).states, states)
    ids = read_records(rf.records_paths(), rows=rf.records_rows())["train_id"].tolist()
    assert len(ids) == len(set(ids))  # no duplicate records
    assert set(ids) <= {t.train_id for t in trains}
    assert not list(tmp_path.glob("out.h5.tmp-*"))
