"""A 16-module mock EuXFEL AGIPD run, served as separate modules and stacked (by
karabo-bridge-serve-files and by beamstream's replay): identical binned means, equal to numpy over
the same data read with extra-data."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from beamstream.config import parse_config
from beamstream.replay import open_reader
from beamstream.replay.server import replay
from beamstream.runner import Runner
from tests.replay.agipd_run import write_agipd_run

DET = "SPB_DET_AGIPD1M-1/DET"
N_TRAINS, N_FRAMES = 3, 4

MODULES = f"""
version = 1
[source]
socket = "REQ"
detector = "{DET}/{{module}}CH0:xtdf"
modules = "0-15"
layout = ["frame", "gain", "ss", "fs"]   # raw AGIPD: data and gain stacked on one axis
gain = 0                                # keep the data plane
[[processors]]
type = "scan_binner"
name = "binned"
"""

STACKED = f"""
version = 1
[source]
socket = "REQ"
detector = "{DET}/APPEND"
layout = ["frame", "gain", "module", "ss", "fs"]
[[processors]]
type = "scan_binner"
name = "binned"
"""


@pytest.fixture(scope="module")
def agipd_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 raw AGIPD module files (extra-data's mock writer), filled with known random counts."""
    return write_agipd_run(tmp_path_factory.mktemp("agipd") / "r0001", 16, N_TRAINS, N_FRAMES)


def reference_mean(run: Path) -> np.ndarray:
    """Mean data plane per module over every frame of the run, read with extra-data."""
    from extra_data import RunDirectory

    dc = RunDirectory(str(run))
    out = np.empty((16, 512, 128))
    for m in range(16):
        arr = dc[f"{DET}/{m}CH0:xtdf", "image.data"].ndarray()  # (frames, 2, 512, 128)
        out[m] = arr[:, 0].astype(np.float64).mean(axis=0)
    return out


def wait_listening(endpoint: str, timeout: float = 60.0) -> None:
    """Wait until a server binds ``endpoint`` (karabo-bridge-serve-files starts slowly: a REQ
    client that gives up on a request meanwhile would lose that train's reply)."""
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_pipeline(text: str, endpoint: str) -> dict[str, Any]:
    runner = Runner(parse_config(text).with_source(endpoint=endpoint), status_out=None)
    status = runner.run(trains=N_TRAINS, duration=90)
    assert status["processed"] == N_TRAINS, status
    return runner.hub.latest().results["binned"]["mean"].data[0, 0]


@pytest.mark.filterwarnings("ignore:Falling back to raw data")
@pytest.mark.timeout(240)
@pytest.mark.parametrize("append", [False, True], ids=["modules", "appended"])
def test_serve_files_modules_and_appended(
    append: bool, agipd_run: Path, free_port, processes, venv_bin: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    argv = [str(venv_bin / "karabo-bridge-serve-files"), str(agipd_run), endpoint, "-z", "REP"]
    proc = processes.start(argv + (["--append-detector-modules"] if append else []))
    wait_listening(endpoint)
    try:
        mean = run_pipeline(STACKED if append else MODULES, endpoint)
    finally:
        processes.stop(proc)
    np.testing.assert_array_equal(mean, reference_mean(agipd_run))


@pytest.mark.filterwarnings("ignore:Falling back to raw data")
@pytest.mark.timeout(240)
@pytest.mark.parametrize("stack", [False, True], ids=["modules", "stacked"])
def test_beamstream_replay_modules_and_stacked(stack: bool, agipd_run: Path, free_port) -> None:
    reader = open_reader(agipd_run, stack_modules=stack)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    stop = threading.Event()
    thread = threading.Thread(
        target=replay,
        args=(reader, endpoint, "REP"),
        kwargs=dict(rate="max", progress=None, stop_event=stop, linger=0.5),
        daemon=True,
    )
    thread.start()
    try:
        mean = run_pipeline(STACKED if stack else MODULES, endpoint)
    finally:
        stop.set()
        thread.join(10)
    np.testing.assert_array_equal(mean, reference_mean(agipd_run))


@pytest.mark.filterwarnings("ignore:Falling back to raw data")
@pytest.mark.timeout(240)
def test_corrected_corr_sources_need_no_appending(
    tmp_path: Path, free_port, processes, venv_bin: Path
) -> None:
    """Corrected data under /CORR/ names (which --append-detector-modules does not stack): our
    own module assembly takes the separate module sources."""
    from extra_data import RunDirectory

    run = write_agipd_run(tmp_path / "r0002", 16, N_TRAINS, N_FRAMES, corrected=True)
    text = (
        MODULES.replace("/DET/{module}CH0:xtdf", "/CORR/{module}CH0:output")
        .replace('layout = ["frame", "gain", "ss", "fs"]', 'layout = ["frame", "ss", "fs"]')
        .replace("gain = 0 ", "# no gain axis ")
    )
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    argv = [str(venv_bin / "karabo-bridge-serve-files"), str(run), endpoint, "-z", "REP"]
    proc = processes.start(argv)
    wait_listening(endpoint)
    try:
        mean = run_pipeline(text, endpoint)
    finally:
        processes.stop(proc)
    dc = RunDirectory(str(run))
    ref = np.stack(
        [
            dc[f"SPB_DET_AGIPD1M-1/CORR/{m}CH0:output", "image.data"]
            .ndarray()
            .mean(axis=0, dtype=np.float64)
            for m in range(16)
        ]
    )
    np.testing.assert_allclose(mean, ref, rtol=1e-12)
