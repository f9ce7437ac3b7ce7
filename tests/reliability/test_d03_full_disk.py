"""Defect 3: a full output disk is counted, the previous file kept, writing resumes when space
returns, and a run whose final snapshot could not be written says so and exits non-zero.

The full disk is simulated without root or mounts: the run's process gets a file-size limit
(``RLIMIT_FSIZE``; a write beyond it fails with ``EFBIG`` as a full disk fails with ``ENOSPC``),
and the test lifts the limit (``prlimit``) to give the space back.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import sys
import threading
import time
from pathlib import Path

import h5py
import pytest

from beamstream.formats import h5layout
from beamstream.formats.results import read_records, read_results_file
from beamstream.sinks.writeguard import WriteGuard, error_reason
from tests.conftest import wait_for
from tests.replay.synth import CONFIG, make_trains
from tests.sinks.test_hdf5 import _send, reference, run_to

pytestmark = pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit")


def _limited(limit: int):  # noqa: ANN202 - a preexec function
    def pre() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return pre


def _start_run(tmp_path: Path, endpoint: str, processes, env, limit: int, n: int):  # noqa: ANN001, ANN202
    cfg = tmp_path / "p.toml"
    sink = '[[sinks]]\ntype = "hdf5"\nfinal_retry = 1.0\n'  # -o sets its path
    cfg.write_text(
        CONFIG.replace("tcp://127.0.0.1:4545", endpoint).replace("[run]", sink + "[run]")
    )
    argv = [sys.executable, "-m", "beamstream", "run", str(cfg), "-o", str(tmp_path / "out.h5")]
    argv += ["-q", "--no-dashboard", "--trains", str(n)]
    return processes.start(argv, env=env, preexec_fn=_limited(limit))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("space_returns", [False, True])
def test_full_disk_run(tmp_path: Path, endpoint: str, processes, subprocess_env, space_returns):
    n = 200
    trains = list(make_trains(n))
    states, expected = reference(trains[:3])  # compiles (and caches) the kernels beforehand
    stop = threading.Event()
    feeder = threading.Thread(target=_send, args=(endpoint, trains, stop, 0.015))
    feeder.start()
    try:
        proc = _start_run(tmp_path, endpoint, processes, subprocess_env, 12_000, n)
        if space_returns:  # once the disk is full (a file reached the limit), give space back
            full = tmp_path / "out.records.h5"
            assert wait_for(lambda: full.exists() and full.stat().st_size >= 12_000, 20)
            time.sleep(0.5)
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        out, _ = proc.communicate(timeout=50)
    finally:
        stop.set()
        feeder.join(10)
    text = out.decode()
    assert proc.returncode == (0 if space_returns else 1), text  # never a crash (-11)
    assert "write errors {'EFBIG':" in text
    failed = sum(int(x) for x in re.findall(r"'E[A-Z]+': (\d+)", text))
    abandoned = text.count("abandoned after a write error")
    # bounded: no traceback per failed write; HDF5 reports a few when a records file is given up
    assert failed >= 5 and text.count("Traceback") <= 2 + 8 * abandoned
    assert not list(tmp_path.glob("out.h5.tmp-*"))  # no debris
    if space_returns:
        rf = read_results_file(tmp_path / "out.h5")
        assert rf.snapshot["final"] and rf.segments[-1]["processed"] == n
        assert "could NOT be written" not in text
        prov = h5py.File(tmp_path / "out.h5")["entry/provenance"]
        assert "EFBIG" in prov.attrs["write_errors"]
        recs = read_records(rf.records_paths(), rows=rf.records_rows())
        ids = recs["train_id"]
        assert len(ids) == len(set(ids.tolist())) and len(ids) <= n  # lost rows, no duplicates
    else:
        assert "the final results could NOT be written" in text
        assert (
            not (tmp_path / "out.h5").exists()
            or not read_results_file(tmp_path / "out.h5").snapshot["final"]
        )


def _fail_writes(monkeypatch, failing: list[bool]) -> None:
    real = os.replace

    def replace(src, dst):  # noqa: ANN001, ANN202 - the failing file layer
        if failing[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(h5layout.os, "replace", replace)


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "r.h5"
    trains = list(make_trains(20))
    run_to(out, trains[:10])
    before = out.read_bytes()
    failing = [True]
    _fail_writes(monkeypatch, failing)
    sink = run_to(out, trains, final_retry=0.0)
    assert out.read_bytes() == before and not list(tmp_path.glob("r.h5.tmp-*"))
    health = sink.health()
    assert health["final_written"] is False and health["write_errors"]["ENOSPC"] >= 1
    failing[0] = False
    guard = WriteGuard("x", final_retry_s=0.0)
    calls = iter([OSError(errno.ENOSPC, "full"), None])

    def write() -> None:
        if (e := next(calls)) is not None:
            raise e

    assert not guard.attempt(write) and guard.attempt(write, final=True)
    assert guard.errors == {"ENOSPC": 1} and guard.final_written


def test_error_reason_reads_hdf5_messages() -> None:
    assert error_reason(OSError(errno.ENOSPC, "full")) == "ENOSPC"
    assert error_reason(RuntimeError("flush failed (errno = 27, error message)")) == "EFBIG"
    assert error_reason(KeyError("x")) == "KeyError"
