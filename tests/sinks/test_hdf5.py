"""HDF5 results sink: NeXus layout, provenance, SWMR records, crash safety, resume and merge."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from beamstream.config import parse_config
from beamstream.executors import LocalExecutor
from beamstream.formats.appendfile import AppendFile
from beamstream.formats.h5layout import open_h5
from beamstream.formats.records import RecordsWriter
from beamstream.formats.results import load_resume, merge_results, open_results, read_results_file
from beamstream.processors.base import Rejected
from beamstream.processors.pipeline import Pipeline
from beamstream.runner import Runner
from beamstream.sinks.hdf5 import HDF5Sink
from beamstream.streamer.sender import Sender
from beamstream.streamer.train import Train
from beamstream.tools import merge_cmd
from tests.replay.synth import CONFIG, DET, FIRST, make_trains

CONFIG_SCALED = CONFIG.replace('name = "totals"', 'name = "totals"\nscale = 2')


def reference(trains: Iterable[Train], text: str = CONFIG):
    """States and results of the pipeline applied directly to ``trains``."""
    pipe = Pipeline(parse_config(text, "ref.toml"))
    states = pipe.empty_states()
    for t in trains:
        try:
            pipe.process(t, states)
        except Rejected:
            pass
    return states, pipe.finalize(states)


def run_to(path: Path, trains: Iterable[Train], text: str = CONFIG, **kw) -> HDF5Sink:
    sink = HDF5Sink(str(path), fsync=False, **kw)
    Runner(parse_config(text, "t.toml"), LocalExecutor(trains), [sink], status_out=None).run()
    assert sink.errors == 0
    return sink


def assert_same_results(results, expected) -> None:
    assert set(results) == set(expected)
    for proc, named in expected.items():
        assert set(results[proc]) == set(named)
        for name, r in named.items():
            got = results[proc][name]
            np.testing.assert_array_equal(np.asarray(got.data), r.data)
            assert tuple(got.dims) == tuple(r.dims)


def assert_same_states(states, expected) -> None:
    assert set(states) == set(expected)
    for name, s in expected.items():
        assert states[name].equals(s), name


@pytest.mark.timeout(30)
def test_layout_provenance_and_open_results(tmp_path: Path) -> None:
    trains = list(make_trains(30))
    trains[5].data.pop(DET)  # rejected: detector data missing
    run_to(tmp_path / "out.h5", trains)
    states, expected = reference(trains)
    with h5py.File(tmp_path / "out.h5") as f:  # a plain open: the file is complete
        entry = f["entry"]
        assert f.attrs["default"] == "entry" and entry.attrs["NX_class"] == "NXentry"
        assert entry["program_name"][()] == b"beamstream"
        assert entry["program_name"].attrs["version"]
        assert entry["config/data"][()].decode() == CONFIG
        assert entry["start_time"][()] and entry["end_time"][()]
        prov = entry["provenance"]
        assert prov["processed"][()] == 29
        assert list(prov["accepted_train_ids"][()]) == [FIRST, FIRST + 29]
        assert prov["first_train_id"][()] == FIRST and prov["last_train_id"][()] == FIRST + 29
        assert prov["rejected/detector data missing"][()] == 1
        assert {"numpy", "numba", "h5py", "beamstream"} <= set(prov["versions"])
        nxdata = entry["results/mean/mean"]
        assert nxdata.attrs["NX_class"] == "NXdata" and nxdata.attrs["signal"] == "data"
        assert list(nxdata.attrs["axes"]) == ["scan", ".", ".", "."]  # text slots: no axis
        assert nxdata.attrs["scan_indices"] == 0
        np.testing.assert_array_equal(nxdata["scan"][()], [0.0, 1.0, 2.0])
        assert "keys" in entry["states/mean"] and "arrays" in entry["states/mean"]
        assert entry["snapshot/final"][()]
        assert len(entry["records/train_id"]) == 29  # external link to the records file
    res = open_results(tmp_path / "out.h5")
    xr = pytest.importorskip("xarray")
    assert isinstance(res["mean"], xr.Dataset)
    np.testing.assert_array_equal(res["mean"]["mean"].values, expected["mean"]["mean"].data)
    np.testing.assert_array_equal(res["totals"]["frames"].values, expected["totals"]["frames"].data)
    assert res.records["train_id"].values.tolist() == [t.train_id for t in trains if DET in t.data]
    assert res.records["accepted_frames"].values.tolist() == [4] * 29
    assert res.provenance["processed"] == 29
    rf = read_results_file(tmp_path / "out.h5")
    assert_same_states(load_resume(tmp_path / "out.h5", parse_config(CONFIG)).states, states)
    assert rf.last_train_id == FIRST + 29


def _slow(trains: Iterable[Train], delay: float) -> Iterator[Train]:
    for t in trains:
        time.sleep(delay)
        yield t


@pytest.mark.timeout(30)
def test_swmr_reader_sees_growing_records(tmp_path: Path) -> None:
    out = tmp_path / "live.h5"
    sink = HDF5Sink(str(out), fsync=False)
    feed = LocalExecutor(_slow(make_trains(60), 0.02))
    runner = Runner(parse_config(CONFIG, "t.toml"), feed, [sink], status_out=None)
    thread = threading.Thread(target=runner.run)
    thread.start()
    lengths, snapshots = [], set()
    try:
        rec = tmp_path / "live.records.h5"
        deadline = time.monotonic() + 10
        while not (rec.exists() and out.exists()) and time.monotonic() < deadline:
            time.sleep(0.01)
        with h5py.File(rec, "r", libver="latest", swmr=True) as f:
            while thread.is_alive():
                ds = f["records/train_id"]
                ds.refresh()
                lengths.append(ds.shape[0])
                with h5py.File(out) as g:  # the results file is always complete
                    snapshots.add(int(g["entry/snapshot/seq"][()]))
                time.sleep(0.05)
    finally:
        runner.stop()
        thread.join(10)
    grown = sorted(set(lengths))
    assert len(grown) >= 3 and grown == sorted(grown) and grown[0] < 60
    assert len(snapshots) >= 2
    with open_h5(rec) as f:
        assert f["records/train_id"][()].tolist() == list(range(FIRST, FIRST + 60))


@pytest.mark.timeout(30)
def test_merge_of_halves_equals_whole(tmp_path: Path, userplugin_registered) -> None:
    trains = list(make_trains(40))
    run_to(tmp_path / "a.h5", trains[:17])
    run_to(tmp_path / "b.h5", trains[17:])
    run_to(tmp_path / "whole.h5", trains)
    parser = argparse.ArgumentParser()
    merge_cmd.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "merge",
            str(tmp_path / "a.h5"),
            str(tmp_path / "b.h5"),
            "-o",
            str(tmp_path / "c.h5"),
            "--trust",
        ]
    )
    assert args.func(args) == 0
    merged, whole = read_results_file(tmp_path / "c.h5"), read_results_file(tmp_path / "whole.h5")
    assert_same_results(merged.results, whole.results)
    config = parse_config(CONFIG)
    assert_same_states(
        load_resume(tmp_path / "c.h5", config).states,
        load_resume(tmp_path / "whole.h5", config).states,
    )
    res = open_results(tmp_path / "c.h5")
    assert res.provenance["processed"] == 40
    assert res.provenance["accepted_train_ids"] == [FIRST, FIRST + 39]
    assert res.records["train_id"].values.tolist() == [t.train_id for t in trains]


@pytest.mark.timeout(30)
def test_different_pipelines_are_refused(tmp_path: Path, userplugin_registered) -> None:
    trains = list(make_trains(6))
    run_to(tmp_path / "a.h5", trains)
    run_to(tmp_path / "b.h5", trains, CONFIG_SCALED)
    with pytest.raises(ValueError, match=r"different pipelines: processors\[1\]\.scale: None vs 2"):
        merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "c.h5")
    assert not (tmp_path / "c.h5").exists()
    with pytest.raises(ValueError, match=r"a\.h5 and .* come from different pipelines"):
        load_resume(tmp_path / "a.h5", parse_config(CONFIG_SCALED, "other.toml"))
    # endpoints, sinks and run settings do not make another pipeline
    same = CONFIG.replace("interval = 0.1", "interval = 5").replace("PULL", "REQ")
    assert load_resume(tmp_path / "a.h5", parse_config(same)).last_train_id == FIRST + 5


@pytest.mark.timeout(30)
def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.h5").write_bytes(b"\x00" * 100)
    with pytest.raises(OSError, match=r"junk\.h5: not a readable HDF5 file"):
        open_results(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "raw.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match=r"raw\.h5: not a beamstream results file"):
        open_results(tmp_path / "raw.h5")
    with pytest.raises(ValueError, match="at least two"):
        merge_results([tmp_path / "raw.h5"], tmp_path / "c.h5")


@pytest.mark.timeout(30)
def test_records_of_changing_shape_and_late_keys(tmp_path: Path) -> None:
    af = AppendFile(tmp_path / "r.h5")
    w = RecordsWriter(af)
    w.append([{"train_id": 1, "hits": np.arange(3)}, {"train_id": 2, "hits": np.arange(2)}])
    w.append([{"train_id": 3, "hits": np.arange(5), "late": 7.5, "nested": {"a": 1}}])
    af.close()
    with open_h5(tmp_path / "r.h5") as f:
        assert f["records/train_id"][()].tolist() == [1, 2, 3]
        # array-valued records are ragged: nothing padded or cropped (tests/sinks/test_records.py)
        assert f["records/hits"][()].tolist() == [0, 1, 2, 0, 1, 0, 1, 2, 3, 4]
        assert f["records_index/hits"][()].tolist() == [[0, 3], [3, 2], [5, 5]]
        assert np.isnan(f["records/late"][0]) and f["records/late"][2] == 7.5
        assert f["records/nested.a"][()].tolist() == [0, 0, 1]
    assert w.warnings == {}


def _send(endpoint: str, trains: Iterable[Train], stop: threading.Event, delay: float) -> None:
    with Sender(endpoint, socket="PUSH") as sender:
        for t in trains:
            while not sender.send(t, timeout=0.1):
                if stop.is_set():
                    return
            time.sleep(delay)
        while not stop.wait(0.1):  # keep the connection until the test is done
            pass


@pytest.mark.timeout(90)
def test_kill_9_then_resume_gives_the_uninterrupted_result(
    tmp_path: Path, endpoint: str, processes, subprocess_env
) -> None:
    n = 120
    trains = list(make_trains(n))
    cfg = tmp_path / "p.toml"
    cfg.write_text(CONFIG.replace("tcp://127.0.0.1:4545", endpoint))
    out = tmp_path / "out.h5"
    stop = threading.Event()
    feeder = threading.Thread(target=_send, args=(endpoint, trains, stop, 0.01))
    feeder.start()
    try:
        proc = processes.start(
            [sys.executable, "-m", "beamstream", "run", str(cfg), "-o", str(out), "-q"],
            env=subprocess_env,
        )
        deadline = time.monotonic() + 40
        seen = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists():
                with h5py.File(out) as f:
                    seen = int(f["entry/provenance/processed"][()])
                if seen >= 25:
                    break
            time.sleep(0.02)
        assert seen >= 25, processes.stop(proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        stop.set()
        feeder.join(10)
    # the killed run left a complete snapshot
    with h5py.File(out) as f:
        assert f["entry/snapshot/seq"][()] >= 1 and not f["entry/snapshot/final"][()]
    with open_h5(tmp_path / "out.records.h5") as f:  # SWMR file of a killed writer: readable
        assert len(f["records/train_id"]) >= 1
    done = read_results_file(out).last_train_id
    assert done is not None and FIRST + 25 <= done < FIRST + n - 1
    rest = [t for t in trains if t.train_id > done]
    stop = threading.Event()
    feeder = threading.Thread(target=_send, args=(endpoint, rest, stop, 0.0))
    feeder.start()
    try:
        proc = processes.start(
            [
                sys.executable,
                "-m",
                "beamstream",
                "run",
                str(cfg),
                "--resume",
                str(out),
                "-q",
                "--trains",
                str(len(rest)),
            ],
            env=subprocess_env,
        )
        assert proc.wait(40) == 0, processes.stop(proc)
    finally:
        stop.set()
        feeder.join(10)
    states, expected = reference(trains)
    resumed = read_results_file(out)
    assert resumed.snapshot["final"]
    assert_same_results(resumed.results, expected)
    assert_same_states(load_resume(out, parse_config(CONFIG)).states, states)
    assert sum(s["processed"] for s in resumed.segments) >= n  # both runs in the provenance
    assert resumed.records_files == ["out.records.h5", "out.records-2.h5"]
