"""Shared by the cluster tests: a Dask backend fixture, synthetic runs, a chunk task that kills."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from beamstream.accumulation import Partial
from beamstream.cluster.chunks import Chunk, process_chunk
from beamstream.cluster.spec import PipelineSpec
from beamstream.config import PipelineConfig, parse_config
from beamstream.executors import LocalExecutor
from beamstream.formats.raw import RawWriter
from beamstream.runner import Runner
from beamstream.sinks.hdf5 import HDF5Sink
from beamstream.streamer.sender import Sender
from beamstream.streamer.train import Train
from tests.replay.synth import CONFIG, make_train

#: the synthetic pipeline (uint16 frames: exact int64 sums) without the user plugin
INT_CONFIG = CONFIG.split('[[processors]]\ntype = "tests.')[0] + "[run]\ninterval = 0.2\n"


def config(endpoint: str = "ipc:///nonexistent", text: str = INT_CONFIG) -> PipelineConfig:
    return parse_config(text).with_source(endpoint=endpoint, socket="PULL")


def float_train(tid: int) -> Train:
    """A synthetic train with float32 frames (sums depend on the order of additions)."""
    t = make_train(tid)
    det = next(iter(t.data))
    rng = np.random.default_rng(tid + 7)
    t.data[det]["image.data"] = rng.random(t.data[det]["image.data"].shape, np.float32) * 1e3
    return t


def write_raw(path: Path, trains: Iterable[Train]) -> Path:
    w = RawWriter(path)
    try:
        w.write(list(trains))
    finally:
        w.close()
    return path


def single_process(cfg: PipelineConfig, trains: Iterable[Train], output: Path | None = None):
    """A plain `Runner` over ``trains``: (final snapshot results, states)."""
    sinks = [HDF5Sink(str(output), records=False, fsync=False)] if output else []
    runner = Runner(cfg, LocalExecutor(list(trains)), sinks, status_out=None)
    runner.run()
    snap = runner.hub.latest()
    return snap.results, runner.states


def push_trains(
    endpoint: str, trains: list[Train], stop: threading.Event, curve: object = None
) -> threading.Thread:
    """Send ``trains`` from a PUSH socket bound at ``endpoint`` (with CURVE keys), in a thread."""
    bound = threading.Event()

    def send() -> None:
        with Sender(endpoint, socket="PUSH", curve=curve) as s:
            bound.set()
            for t in trains:
                while not s.send(t, timeout=0.2):
                    if stop.is_set():
                        return
            stop.wait(60)  # closing would drop what the workers did not take yet

    th = threading.Thread(target=send, daemon=True)
    th.start()
    bound.wait(5)
    return th


def results_equal(a: dict, b: dict) -> None:
    """Every result array of every accumulator identical (bitwise, NaNs equal)."""
    assert a.keys() == b.keys()
    for proc in a:
        assert a[proc].keys() == b[proc].keys(), proc
        for name, r in a[proc].items():
            np.testing.assert_array_equal(r.data, b[proc][name].data, err_msg=f"{proc}.{name}")
            assert r.data.dtype == b[proc][name].data.dtype
            for c, v in r.coords.items():
                np.testing.assert_array_equal(v, b[proc][name].coords[c])


def killing_chunk(spec: PipelineSpec, chunk: Chunk, marker: str, victim: int = 1) -> Partial:
    """`process_chunk`, except that chunk ``victim`` kills its worker process the first time."""
    if chunk.index == victim:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    return process_chunk(spec, chunk)
