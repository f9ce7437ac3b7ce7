"""Recording a DECTRIS stream to NXmx and serving NXmx (ours and DECTRIS-style) as a V2 stream."""

from __future__ import annotations

import threading

import h5py
import hdf5plugin
import numpy as np
import pytest
import zmq

from beamstream.dectris.geometry import stream_geometry
from beamstream.dectris.replay import replay_nxmx
from beamstream.dectris.simulate import EigerSimulator
from beamstream.dectris.source import DectrisSource
from beamstream.replay.cli import main as replay_main


def _collect(src, n, timeout=20):
    out = []
    for _ in range(n):
        t = src.get(timeout=timeout)
        assert t is not None, src.stats()
        out.append(t)
    return out


def _in_thread(fn, *args, **kwargs):
    t = threading.Thread(target=fn, args=args, kwargs=kwargs, daemon=True)
    t.start()
    return t


@pytest.mark.timeout(120)
def test_recorded_stream_replays_identically(tmp_path, endpoint, tcp_endpoint):
    sim = EigerSimulator(shape=(48, 64), channels=2, scan=(2, 3), compression="bslz4")
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.bind(endpoint)
    prefix = tmp_path / "rec" / "scan"
    try:
        with DectrisSource(endpoint, record=str(prefix)) as src:
            for _, parts in sim.messages(6, series_id=4):
                push.send_multipart(parts)
            _collect(src, 6)
        assert src.stats()["recorded_images"] == 6
    finally:
        push.close(linger=0)
    master = tmp_path / "rec" / "scan_000004_master.h5"
    with h5py.File(master) as f:  # compressed blocks kept: the data set reads through the filter
        d = f["entry/data/data_000001"]
        np.testing.assert_array_equal(d[3], sim.frames(3)["threshold_1"])
        assert f["entry/instrument/detector/beam_center_x"][()] == pytest.approx(
            sim.geometry.poni2 / sim.geometry.pixel2
        )

    stop = threading.Event()
    server = _in_thread(
        replay_nxmx, master, endpoint=tcp_endpoint, rate="max", loops=2, stop_event=stop
    )
    try:
        with DectrisSource(tcp_endpoint) as src:
            trains = _collect(src, 12)
            starts = src.series_starts
    finally:
        stop.set()
        server.join(10)
    for k, t in enumerate(trains):
        for ch in sim.channels:
            np.testing.assert_array_equal(t.data["eiger"][f"image.{ch}"][0], sim.frames(k % 6)[ch])
    assert [s.series_id for s in starts] == [1, 2]  # each loop a new series
    assert trains[6].train_id > trains[5].train_id
    got = stream_geometry(starts[0])
    np.testing.assert_array_equal(got["mask"], sim.mask)
    assert got["geometry"]["poni1"] == pytest.approx(sim.geometry.poni1)


def _dectris_style_pair(tmp_path, frames: np.ndarray) -> str:
    """An Eiger master + data pair as the detector writes it (bslz4 through hdf5plugin)."""
    data = tmp_path / "eiger_data_000001.h5"
    with h5py.File(data, "w") as f:
        f.create_dataset(
            "entry/data/data",
            data=frames,
            chunks=(1, *frames.shape[1:]),
            **hdf5plugin.Bitshuffle(cname="lz4"),
        )
    master = tmp_path / "eiger_master.h5"
    with h5py.File(master, "w") as f:
        det = f.create_group("entry/instrument/detector")
        det["beam_center_x"], det["beam_center_y"] = 30.5, 20.25
        det["x_pixel_size"], det["y_pixel_size"] = 7.5e-5, 7.5e-5
        det["detector_distance"] = 0.35
        det["frame_time"] = 0.05
        spec = det.create_group("detectorSpecific")
        spec["pixel_mask"] = (np.arange(frames[0].size).reshape(frames.shape[1:]) % 11 == 0).astype(
            np.uint32
        )
        spec["nimages"] = len(frames)
        f["entry/instrument/beam/incident_wavelength"] = 0.9
        f["entry/data/data_000001"] = h5py.ExternalLink(data.name, "/entry/data/data")
    return str(master)


@pytest.mark.timeout(120)
def test_dectris_nxmx_pair_served_by_replay_cli(tmp_path, tcp_endpoint):
    frames = np.random.default_rng(3).poisson(1.0, (5, 40, 60)).astype(np.uint32)
    master = _dectris_style_pair(tmp_path, frames)
    argv = [
        master,
        "--socket",
        "PUSH",
        "--endpoint",
        tcp_endpoint,
        "--rate",
        "max",
        "--trains",
        "1:5:2",
        "-q",
    ]
    server = _in_thread(replay_main, argv)
    try:
        with DectrisSource(tcp_endpoint) as src:
            trains = _collect(src, 2)
            start = src.series_starts[0]
    finally:
        server.join(20)
    np.testing.assert_array_equal(trains[0].data["eiger"]["image.threshold_1"][0], frames[1])
    np.testing.assert_array_equal(trains[1].data["eiger"]["image.threshold_1"][0], frames[3])
    np.testing.assert_array_equal(trains[1].data["eiger"]["image_id"], [3])
    g = stream_geometry(start)["geometry"]
    assert g["poni2"] == pytest.approx(30.5 * 7.5e-5) and g["dist"] == 0.35
    assert g["wavelength"] == pytest.approx(0.9e-10) and g["shape"] == [40, 60]
    assert start.header["frame_time"] == 0.05
