"""Replay: readers (raw, EuXFEL, LiX, TIFF), the server (pacing, loop, selection), round trips."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import h5py
import numpy as np
import pytest

from beamstream.config import parse_config
from beamstream.executors import LocalExecutor
from beamstream.formats.raw import RawWriter
from beamstream.replay import FormatError, open_reader
from beamstream.replay import cli as replay_cli
from beamstream.replay.server import replay
from beamstream.runner import Runner
from beamstream.sinks.recorder import RawRecorder
from beamstream.streamer.protocol import decode_train, encode_train
from beamstream.streamer.receiver import Receiver
from beamstream.streamer.sender import Sender
from beamstream.streamer.train import Train
from tests.replay.synth import CONFIG, DET, FIRST, MOTOR, assert_same_train, make_trains


def _serve(reader, endpoint: str, socket: str = "PUSH", **kw):
    """Run `replay` in a thread; returns (thread, summary dict filled at the end, stop event)."""
    stop, out = threading.Event(), {}

    def target() -> None:
        out.update(
            replay(
                reader,
                endpoint,
                socket,
                progress=None,
                stop_event=stop,
                linger=kw.pop("linger", 0.5),
                **kw,
            )
        )

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out, stop


def _receive(endpoint: str, n: int, socket: str = "PULL") -> list[Train]:
    with Receiver(endpoint, socket, timeout=10) as rx:
        got = []
        for t in rx:
            got.append(t.copy())
            if len(got) == n:
                break
    return got


def _recording(path: Path, trains: Iterable[Train]) -> Path:
    w = RawWriter(path)
    w.write([decode_train(encode_train(t)) for t in trains])
    w.close()
    return path


def _final_states(config_text: str, source) -> dict:
    runner = Runner(parse_config(config_text, "t.toml"), LocalExecutor(source), status_out=None)
    runner.run()
    return runner.states


@pytest.mark.timeout(60)
def test_record_replay_round_trip_gives_identical_results(tmp_path: Path, endpoint: str) -> None:
    trains = list(make_trains(25))
    # live: a sender -> a run with the raw recorder
    config = parse_config(CONFIG.replace("tcp://127.0.0.1:4545", endpoint), "t.toml")
    rec = RawRecorder(str(tmp_path / "rec.h5"))
    stop = threading.Event()

    def send() -> None:
        with Sender(endpoint, socket="PUSH") as s:
            for t in trains:
                while not s.send(t, timeout=0.1):
                    if stop.is_set():
                        return
            stop.wait(10)

    feeder = threading.Thread(target=send)
    feeder.start()
    try:
        live = Runner(config, LocalExecutor(recorders=[rec]), status_out=None)
        live.run(trains=len(trains))
    finally:
        stop.set()
        feeder.join(10)
    assert rec.recorded == 25
    # replay the recording over a socket into a second run
    ep2 = endpoint.replace("x.sock", "y.sock")
    thread, summary, stop = _serve(open_reader(tmp_path / "rec.h5"), ep2, rate="max")
    try:
        replayed = Runner(
            parse_config(CONFIG.replace("tcp://127.0.0.1:4545", ep2), "t.toml"), status_out=None
        )
        replayed.run(trains=25)
    finally:
        stop.set()
        thread.join(10)
    reference = _final_states(CONFIG, iter(trains))
    for name, state in reference.items():
        assert replayed.states[name].equals(state) and live.states[name].equals(state)
    # offline, in-process: the reader as the run's source
    offline = _final_states(CONFIG, open_reader(tmp_path / "rec.h5"))
    assert all(offline[n].equals(s) for n, s in reference.items())


@pytest.mark.timeout(30)
def test_server_pacing_loop_and_selection(tmp_path: Path, endpoint: str) -> None:
    raw = _recording(tmp_path / "r.h5", make_trains(5))
    thread, summary, stop = _serve(open_reader(raw, trains="1:"), endpoint, rate="20", loops=3)
    try:
        got = _receive(endpoint, 12)
    finally:
        thread.join(10)
        stop.set()
    ids = [t.train_id for t in got]
    assert ids == [
        10001,
        10002,
        10003,
        10004,
        10006,
        10007,
        10008,
        10009,
        10011,
        10012,
        10013,
        10014,
    ]
    assert summary["sent"] == 12 and summary["total"] == 12
    assert 11 / 20 * 0.9 <= summary["elapsed"] < 11 / 20 + 1.0  # 20 Hz
    assert got[4].timestamp == pytest.approx(got[0].timestamp + 5 * 0.1)  # shifted with the ids
    # recorded pacing: the 0.1 s spacing of the timestamps; dummy timestamps: the send time
    thread, summary, stop = _serve(
        open_reader(raw, include=[f"{MOTOR}"]), endpoint, rate="recorded", dummy_timestamps=True
    )
    try:
        t0 = time.time()
        got = _receive(endpoint, 5)
    finally:
        thread.join(10)
        stop.set()
    assert 0.35 <= summary["elapsed"] < 1.5
    assert list(got[0].data) == [MOTOR]
    assert all(t0 - 1 < t.timestamp < time.time() + 1 for t in got)


@pytest.mark.filterwarnings("ignore:Falling back to raw data")
@pytest.mark.timeout(60)
def test_euxfel_run_to_receiver_and_karabo_bridge_client(tmp_path: Path, free_port) -> None:
    pytest.importorskip("extra_data")
    karabo_bridge = pytest.importorskip("karabo_bridge")
    from extra_data.tests.mockdata import write_file
    from extra_data.tests.mockdata.detectors import DSSCModule
    from extra_data.tests.mockdata.xgm import XGM

    run = tmp_path / "r0001"
    run.mkdir()
    for m in range(2):
        write_file(
            str(run / f"RAW-R0001-DSSC{m:02d}-S00000.h5"),
            [DSSCModule(f"SCS_DET_DSSC1M-1/DET/{m}CH0", frames_per_train=4)],
            ntrains=6,
            chunksize=6,
        )
    write_file(
        str(run / "RAW-R0001-DA01-S00000.h5"),
        [XGM("SA3_XTD10_XGM/XGM/DOOCS")],
        ntrains=6,
        chunksize=6,
    )
    reader = open_reader(run)
    assert reader.format == "euxfel" and len(reader) == 6
    tcp = f"tcp://127.0.0.1:{free_port()}"
    thread, summary, stop = _serve(reader, tcp, "REP", rate="max")
    try:
        with karabo_bridge.Client(tcp, sock="REQ", timeout=10) as client:
            data, meta = client.next()
        src = "SCS_DET_DSSC1M-1/DET/0CH0:xtdf"
        assert data[src]["image.data"].shape == (4, 1, 128, 512)
        assert meta[src]["timestamp.tid"] == 10000
        assert "beamPosition.ixPos.value" in data["SA3_XTD10_XGM/XGM/DOOCS"]
        got = _receive(tcp, 5, "REQ")  # beamstream's own receiver takes the rest
    finally:
        stop.set()
        thread.join(10)
    assert [t.train_id for t in got] == [10001, 10002, 10003, 10004, 10005]
    assert got[0].get("SA3_XTD10_XGM/XGM/DOOCS", "beamPosition.ixPos") is not None
    stacked = open_reader(run, stack_modules=True, include=["*DSSC*[image.data]"], trains="0:2")
    trains = list(stacked)
    assert len(trains) == 2
    assert list(trains[0].data) == ["SCS_DET_DSSC1M-1/DET/APPEND"]
    arr = trains[0].data["SCS_DET_DSSC1M-1/DET/APPEND"]["image.data"]
    assert arr.shape == (4, 1, 16, 128, 512)  # raw data: stacked on axis -3, as serve-files does


@pytest.mark.timeout(30)
def test_lix_reader(tmp_path: Path) -> None:
    path = tmp_path / "lix.h5"
    rng = np.random.default_rng(0)
    frames = {s: rng.integers(0, 50, (3, 10, 8), dtype=np.int32) for s in ("s1", "s2")}
    with h5py.File(path, "w") as f:
        for i, (s, fr) in enumerate(frames.items()):
            f[f"{s}/primary/data/pil1M_image"] = fr[:, None]  # (events, frames, y, x)
            f[f"{s}/primary/data/em1_sum"] = np.arange(3.0) + 10 * i
            f[f"{s}/primary/timestamps/pil1M_image"] = 1000.0 + np.arange(3) + 10 * i
    reader = open_reader(path, first_train_id=100)
    assert reader.format == "lix"
    trains = list(reader)
    assert [t.train_id for t in trains] == list(range(100, 106))
    np.testing.assert_array_equal(trains[4].data["pil1M_image"]["image.data"], frames["s2"][1:2])
    assert trains[4].data["primary"] == {"sample": "s2", "em1_sum": 11.0}
    assert trains[4].timestamp == 1011.0
    assert trains[0].dims["pil1M_image"]["image.data"] == ("frame", "y", "x")
    # trains= takes a slice of positions as well as its text form
    for sel in (slice(1, 5, 2), "1:5:2", np.s_[1:5:2]):
        picked = list(open_reader(path, first_train_id=100, trains=sel))
        assert [t.train_id for t in picked] == [101, 103]
    with pytest.raises(ValueError, match="step must be a positive integer"):
        open_reader(path, trains=slice(0, 5, -1))
    with pytest.raises(ValueError, match="expected 'START:STOP:STEP'"):
        open_reader(path, trains=3.5)
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["s1/primary/other"] = 1
    with pytest.raises(FormatError, match="unknown HDF5 layout"):
        open_reader(tmp_path / "bad.h5")
    with pytest.raises(FormatError, match=r"bad\.h5: no LiX/py4xs data \(expected <sample>"):
        open_reader(tmp_path / "bad.h5", format="lix")


@pytest.mark.timeout(30)
def test_tiff_reader_with_manifest(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    folder = tmp_path / "scan"
    folder.mkdir()
    images = [np.full((6, 5), i, np.int32) for i in range(4)]
    for i, img in enumerate(images):
        tifffile.imwrite(folder / f"image{i:05d}.tiff", img)
    rows = ["% Delay\tTheta\tCrystal [V]"] + [
        f"{-10 + i}\t{18.1 + i * 0.05:.2f}\t0.5" for i in range(4)
    ]
    (folder / "manifest.dat").write_text("\n".join(rows) + "\n")
    (folder / "parameters.txt").write_text("not the manifest")
    reader = open_reader(folder)
    assert reader.format == "tiff" and len(reader) == 4
    trains = list(reader)
    np.testing.assert_array_equal(trains[2].data["tiff"]["image.data"], images[2][None])
    assert trains[2].data["manifest"] == {"Delay": -8.0, "Theta": 18.2, "Crystal [V]": 0.5}
    # a scan over the manifest column, offline
    config = (
        CONFIG.replace(DET, "tiff").replace(MOTOR, "manifest").replace("actualPosition", "Delay")
    )
    states = _final_states(config, open_reader(folder))
    assert states["totals"]["frames"].sum() == 4
    (folder / "image00003.tiff").unlink()
    with pytest.raises(FormatError, match=r"3 TIFF files for 4 manifest rows"):
        open_reader(folder)


@pytest.mark.timeout(30)
def test_replay_cli(tmp_path: Path, endpoint: str, capsys) -> None:
    raw = _recording(tmp_path / "r.h5", make_trains(4))
    parser = argparse.ArgumentParser()
    replay_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "replay",
            str(raw),
            "--endpoint",
            endpoint,
            "--socket",
            "PUSH",
            "--rate",
            "max",
            "--trains",
            "id:10001:",
            "--linger",
            "0.5",
        ]
    )
    result = {}
    thread = threading.Thread(target=lambda: result.update(rc=args.func(args)))
    thread.start()
    try:
        got = _receive(endpoint, 3)
    finally:
        thread.join(10)
    assert result["rc"] == 0 and [t.train_id for t in got] == [10001, 10002, 10003]
    out = capsys.readouterr()
    assert "sent 3 trains" in out.out and "3/3 trains" in out.err
    for t in got:
        assert_same_train(t, decode_train(encode_train(next(make_trains(1, start=t.train_id)))))
    bad = parser.parse_args(["replay", str(tmp_path / "nothing.h5")])
    with pytest.raises(OSError, match=r"nothing\.h5: no such file"):
        bad.func(bad)
    bad = parser.parse_args(["replay", str(raw), "--rate", "fast"])
    with pytest.raises(ValueError, match="expected recorded, max or trains per second"):
        bad.func(bad)
    assert FIRST == 10000 and DET


def test_raw_reader_maps_uncompressed_chunks_without_reading(tmp_path: Path) -> None:
    import mmap

    trains = list(make_trains(6))
    path = tmp_path / "mapped.h5"
    writer = RawWriter(path)
    writer.write(trains)
    writer.close()
    reader = open_reader(path)
    try:
        for original, back in zip(trains, reader, strict=True):
            assert_same_train(original, back)
            arr = back.data[DET]["image.data"]
            base = arr
            while isinstance(base, np.ndarray | memoryview):
                base = base.obj if isinstance(base, memoryview) else base.base
            assert isinstance(base, mmap.mmap), "one chunk per train is served from the mapping"
            assert not arr.flags.writeable
    finally:
        reader.close()
